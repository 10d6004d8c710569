"""`dvp docs [TOPIC]` and `dvp examples [SET]`: print what installer/docs/shipped.py finds."""

from __future__ import annotations

import sys

import click

from installer.docs.shipped import EXAMPLE_SETS, NotShipped, doc_text, example_text, topics


@click.command("docs", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("topic", required=False)
def docs(topic: str | None) -> None:
    """Print a document shipped in this binary (e.g. `dvp docs upgrade`); without TOPIC, list them."""
    if topic is None:
        for name in topics():
            click.echo(name)
        return
    try:
        click.echo(doc_text(topic), nl=False)
    except NotShipped as exc:
        click.echo(f"dvp docs: {exc}", err=True)
        sys.exit(2)


@click.command("examples", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name", required=False)
def examples(name: str | None) -> None:
    """Print example manifests (`dvp examples quickstart | kubectl apply -f -`); without NAME, list the sets."""
    if name is None:
        for key in sorted(EXAMPLE_SETS):
            click.echo(f"{key}: {', '.join(EXAMPLE_SETS[key])}")
        return
    try:
        click.echo(example_text(name), nl=False)
    except NotShipped as exc:
        click.echo(f"dvp examples: {exc}", err=True)
        sys.exit(2)
