"""`dvp config example` and `dvp config validate FILE`: the install config from the command line.

`validate` prints one line per problem (`FILE:LINE:COLUMN PATH: MESSAGE`) and exits 2 when the
config is invalid, like `dvp check` does for a bad config.
"""

from __future__ import annotations

import json
import sys
from importlib import resources

import click

from installer.config.errors import ConfigInvalid
from installer.config.loader import load_config

EXIT_INVALID = 2


def example_text() -> str:
    return resources.files("installer.config").joinpath("example.yaml").read_text(encoding="utf-8")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def config() -> None:
    """Print an example install config, or validate one."""


@config.command()
def example() -> None:
    """Print a commented example install config."""
    click.echo(example_text(), nl=False)


@config.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(file: str, output: str) -> None:
    """Validate FILE; print every problem with its line, column and field path."""
    from installer.checks.catalog import check_names

    try:
        cfg = load_config(file, known_checks=check_names())
    except ConfigInvalid as exc:
        if output == "json":
            click.echo(json.dumps({"valid": False, "errors": [
                {"file": i.file, "line": i.line, "column": i.column, "path": i.path, "message": i.message}
                for i in exc.issues
            ]}, indent=2))
        else:
            for issue in exc.issues:
                click.echo(str(issue), err=True)
            n = len(exc.issues)
            click.echo(f"{file}: {n} error{'s' if n != 1 else ''}", err=True)
        sys.exit(EXIT_INVALID)
    if output == "json":
        click.echo(json.dumps({"valid": True, "errors": []}, indent=2))
    else:
        click.echo(
            f"{file}: valid (target {cfg.target}, {len(cfg.hosts)} host{'s' if len(cfg.hosts) != 1 else ''}, "
            f"profile {cfg.checks.profile})"
        )
