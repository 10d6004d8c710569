"""`dvp version`: this binary's version, build features and datastore data version, and with
`--cluster` every component's version as the running platform reports it
(`controlplane.common.clusterversions`). `dvp upgrade` runs `BUNDLE version -o json` to learn
what a bundle is before it copies it anywhere."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

DEFAULT_KUBECONFIG = Path("/var/lib/dvp/server/kubeconfig")


def local_info() -> dict[str, Any]:
    from controlplane.apiserver.migrations import data_version
    from controlplane.common.version import BUILD_FEATURES, __version__

    return {"version": __version__, "dataVersion": data_version(), "features": sorted(BUILD_FEATURES),
            "frozen": bool(getattr(sys, "frozen", False)), "executable": sys.executable}


def _kubeconfig(given: Path | None) -> Path:
    if given is not None:
        return given
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return Path(env.split(os.pathsep)[0])
    return DEFAULT_KUBECONFIG


@click.command("version")
@click.option("--cluster", is_flag=True, help="Also show the versions the running platform reports.")
@click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              help=f"Kubeconfig of the platform [default: $KUBECONFIG, else {DEFAULT_KUBECONFIG}].")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def version(cluster: bool, kubeconfig: Path | None, output: str) -> None:
    """Show the version of this dvp and, with --cluster, of the API server, the controllers
    and the node handler on every node."""
    doc: dict[str, Any] = {"client": local_info()}
    if cluster:
        from controlplane.common.clusterversions import collect
        from controlplane.common.kube.quick import quick_client

        path = _kubeconfig(kubeconfig)
        if not path.is_file():
            raise click.UsageError(f"{path}: no kubeconfig there; give --kubeconfig or set KUBECONFIG")
        doc["cluster"] = collect(quick_client(path, user_agent="dvp-version")).to_json()
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        _table(doc)
    if cluster and doc["cluster"]["errors"]:
        sys.exit(1)


def _table(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dvp versions")
    for col in ("component", "where", "version", "state"):
        table.add_column(col)
    client = doc["client"]
    feats = f" features: {', '.join(client['features'])}" if client["features"] else ""
    table.add_row("dvp (this binary)", "local", client["version"], f"data version {client['dataVersion']}{feats}")
    cluster = doc.get("cluster")
    if cluster:
        srv = cluster["server"]
        table.add_row("API server", "", srv["version"] or "?", f"data version {srv['dataVersion']}")
        ctl = cluster["controllers"]
        table.add_row("controllers", ctl["holder"], ctl["version"] or "?", "leading" if ctl["leading"] else "NOT leading")
        for node in cluster["nodes"]:
            state = ("Ready" if node["ready"] else f"NotReady ({node['ready_reason']})") + \
                (", cordoned" if node["unschedulable"] else "")
            table.add_row("node handler", node["name"], node["version"] or "?", state)
    console = Console()
    console.print(table)
    for err in (cluster or {}).get("errors", []):
        console.print(f"[red]error:[/red] {err}")
