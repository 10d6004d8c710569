"""`dvp check --config FILE`: run every preflight check on every host and print a table per host
(or `-o json`). Exit status: 0 all passed (warnings allowed), 1 a check failed, 2 the config is
invalid."""

from __future__ import annotations

import json
import logging
import sys

import click
from rich.console import Console

from installer.checks.model import Severity
from installer.config.errors import ConfigInvalid

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


@click.command("check", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Install config file.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--skip", multiple=True, metavar="NAME", help="Skip a check by name (repeatable); adds to checks.skip.")
@click.option("--profile", type=click.Choice(["production", "evaluation"]), help="Override checks.profile.")
@click.option("--accept-new-host-keys", is_flag=True, help="Record host keys not yet in known_hosts (changed keys stay refused).")
@click.option("--list", "list_checks", is_flag=True, help="List the checks and exit.")
@click.option("-v", "--verbose", count=True, help="Log connection details to stderr (-vv: paramiko too).")
def check(
    config_path: str | None,
    output: str,
    skip: tuple[str, ...],
    profile: str | None,
    accept_new_host_keys: bool,
    list_checks: bool,
    verbose: int,
) -> None:
    """Run the preflight checks on every host of the install config."""
    from installer.checks.catalog import CATALOG, check_names
    from installer.checks.render import ProgressListener, print_catalog, print_report, report_json
    from installer.checks.runner import run_preflight
    from installer.config.loader import load_config

    out = Console()
    err = Console(stderr=True)
    if list_checks:
        if output == "json":
            click.echo(json.dumps([
                {"name": c.name, "group": c.group, "description": c.description, "dependsOn": list(c.depends),
                 "severity": c.severity.value if isinstance(c.severity, Severity) else "varies"}
                for c in CATALOG
            ], indent=2))
        else:
            print_catalog(CATALOG, out)
        return
    if not config_path:
        raise click.UsageError("--config FILE is required (or --list)")
    names = check_names()
    unknown = [s for s in skip if s not in names]
    if unknown:
        click.echo(f"--skip: unknown check {unknown[0]!r}; `dvp check --list` lists them", err=True)
        sys.exit(EXIT_INVALID)
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
        if verbose < 2:
            logging.getLogger("paramiko").setLevel(logging.WARNING)
    try:
        config = load_config(config_path, known_checks=names)
    except ConfigInvalid as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        sys.exit(EXIT_INVALID)
    if profile:
        config = config.model_copy(update={"checks": config.checks.model_copy(update={"profile": profile})})
    if err.is_terminal and output == "table":
        with ProgressListener(err) as listener:
            run = run_preflight(config, skip=skip, accept_new_host_keys=accept_new_host_keys, listener=listener)
    else:
        run = run_preflight(config, skip=skip, accept_new_host_keys=accept_new_host_keys)
    if output == "json":
        click.echo(report_json(run.report))
    else:
        print_report(run.report, out)
    sys.exit(run.report.exit_code)
