"""`dvp datastore`: back up, restore and describe the embedded server's datastore on its host
(the upgrade runs these over SSH; operators can too)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

DEFAULT_DATA_DIR = Path("/var/lib/dvp/server")


def _print(info: dict[str, Any], output: str, title: str) -> None:
    if output == "json":
        click.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in info.items():
        table.add_row(key, str(value))
    Console().print(table)


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


_data_dir = click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_DATA_DIR,
                         show_default=True, help="The server's data directory (holds state.db).")
_output = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)


@click.group("datastore")
def datastore() -> None:
    """Back up, restore and describe the datastore of `dvp server` (SQLite, DATA_DIR/state.db)."""


@datastore.command("backup")
@_data_dir
@click.option("--to", "target", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="File to write the copy to (written beside it, renamed when complete).")
@_output
def backup_cmd(data_dir: Path, target: Path, output: str) -> None:
    """A consistent copy of the datastore, taken online while the server runs."""
    from controlplane.apiserver.backups import DatastoreError, backup

    try:
        _print(backup(data_dir, target), output, "datastore backup")
    except DatastoreError as exc:
        _fail(exc)


@datastore.command("restore")
@_data_dir
@click.option("--from", "source", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="A file written by `dvp datastore backup`.")
@_output
def restore_cmd(data_dir: Path, source: Path, output: str) -> None:
    """Put a backup back (stop dvp-server first; the replaced files are moved aside, not deleted)."""
    from controlplane.apiserver.backups import DatastoreError, restore

    try:
        _print(restore(data_dir, source), output, "datastore restored")
    except DatastoreError as exc:
        _fail(exc)


@datastore.command("info")
@_data_dir
@click.option("--file", "path", type=click.Path(path_type=Path, dir_okay=False),
              help="Describe this file instead of DATA_DIR/state.db (e.g. a backup).")
@_output
def info_cmd(data_dir: Path, path: Path | None, output: str) -> None:
    """Data version, object count, revision and the dvp version that last opened it."""
    from controlplane.apiserver.backups import DatastoreError, db_path, describe
    from controlplane.apiserver.migrations import data_version

    try:
        info = describe(path or db_path(data_dir))
    except DatastoreError as exc:
        _fail(exc)
        return
    info["readableByThisBuild"] = info["dataVersion"] <= data_version()
    _print(info, output, "datastore")
