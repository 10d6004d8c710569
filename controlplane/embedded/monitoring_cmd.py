"""`dvp monitoring`: the alert rules and Grafana dashboards shipped inside this binary, for an
operator to load into the Prometheus and Grafana they run (`dvp monitoring rules >
/etc/prometheus/rules/dvp.rules.yaml`)."""

from __future__ import annotations

import click

from controlplane.api import monitoring as shipped


@click.group("monitoring")
def monitoring() -> None:
    """Print the Prometheus alert rules and Grafana dashboards shipped with dvp."""


@monitoring.command()
def rules() -> None:
    """The Prometheus alert rules (a rule file for `rule_files:`)."""
    click.echo(shipped.rules().read_text(), nl=False)


@monitoring.command()
@click.argument("name", required=False)
def dashboard(name: str | None) -> None:
    """Grafana dashboard NAME as JSON (without NAME: list them)."""
    found = {f.name.removesuffix(".json").removeprefix("dvp-"): f for f in shipped.dashboards()}
    if name is None:
        click.echo("\n".join(sorted(found)))
        return
    if name not in found:
        raise click.BadParameter(f"no dashboard {name!r}; there are: {', '.join(sorted(found))}", param_hint="NAME")
    click.echo(found[name].read_text(), nl=False)
