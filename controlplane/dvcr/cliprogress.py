"""What `dvp dvcr` shows on a terminal: a rich progress bar for imports, and tables for
import results and GC reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from controlplane.dvcr.client import RegistryClient
from controlplane.dvcr.credentials import DvcrConnection
from controlplane.dvcr.importer.pipeline import ImportResult, import_image
from controlplane.dvcr.importer.progress import Progress as ImportProgress
from controlplane.dvcr.importer.sink import RegistrySink


async def run_import(source: Any, conn: DvcrConnection, repo: str, tag: str, checksums: dict[str, str], *,
                     spool_dir: Path | None, show: bool, progress_json: bool = False) -> ImportResult:
    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), console=console, disable=not show, transient=False)
    task = bar.add_task(f"importing {source.description}", total=None)

    def update(p: ImportProgress) -> None:
        if progress_json:  # one JSON line per report on stderr, for the controllers' importer jobs
            sys.stderr.write(json.dumps({"progress": p.to_json()}) + "\n")
            sys.stderr.flush()
            return
        label = {"downloading": "reading", "pushing": "pushing unpacked disk", "done": "read"}.get(p.phase, p.phase)
        bar.update(task, completed=p.done, total=p.total, description=f"{label} {source.description}")

    async with RegistryClient(conn.url, ssl_context=conn.ssl_context(), username=conn.username,
                              password=conn.password, token=conn.token) as client:
        with bar:
            return await import_image(source, RegistrySink(client), repo, tag=tag, checksums=checksums,
                                      progress=update if show or progress_json else None, spool_dir=spool_dir)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def print_result(r: ImportResult) -> None:
    table = Table(title=f"imported {r.image}", show_header=False)
    for k, v in [("digest", r.digest), ("format", r.format), ("compression", r.compression or "none"),
                 ("virtual size", _size(r.virtual_size)), ("unpacked size", _size(r.unpacked_size)),
                 ("stored size", _size(r.stored_size)), ("source size", _size(r.source_size)),
                 ("source", r.source), ("checksums", ", ".join(f"{a} ok" for a in r.checksums) or "-"),
                 ("took", f"{r.seconds:.1f} s at {_size(int(r.average_speed))}/s")]:
        table.add_row(k, v)
    Console().print(table)


def print_gc(report: dict[str, Any]) -> None:
    verb = "would remove" if report["dryRun"] else "removed"
    console = Console()
    table = Table(title=f"DVCR garbage collection ({'dry run' if report['dryRun'] else 'done'})")
    table.add_column("what")
    table.add_column(verb)
    for m in report["manifests"]:
        table.add_row("manifest", f"{m['repository']}@{m['digest']}")
    for b in report["blobs"]:
        table.add_row("blob", f"{b['digest']} ({_size(b['size'])})")
    for u in report["uploads"]:
        table.add_row("upload", u)
    for r in report["repositories"]:
        table.add_row("repository", r)
    console.print(table)
    console.print(f"{verb} {len(report['manifests'])} manifests, {len(report['blobs'])} blobs "
                  f"({_size(report['freedBytes'])}); kept {report['keptManifests']} manifests and "
                  f"{report['keptBlobs']} blobs; {report['seconds']} s")
