"""`python -m nodeimage.guest build --out DIR`: build (or reuse) the guest test image.

The shell face of `nodeimage.guest.build`: draws the build steps with rich, then copies the
cached raw, qcow2 and xz files (and the kernel/initrd pair) into DIR and lists them, as a
table or as JSON (`-o json`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from nodeimage.guest.build import FLAVOURS, GuestImage, ensure_image, export


class _BytesColumn(DownloadColumn):
    """Byte counts, only for steps that report bytes (the others show a spinner only)."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("bytes") else Text("")


class RichReporter:
    """Shows each build step as a line with a spinner, and byte progress where there is some."""

    def __init__(self, progress: Progress, flavour: str) -> None:
        self._progress = progress
        self._flavour = flavour
        self._task: TaskID | None = None

    def step(self, description: str) -> None:
        self._close()
        self._task = self._progress.add_task(
            escape(f"[{self._flavour}] {description}"), total=None, bytes=False
        )

    def progress(self, done: int, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=done, total=total, bytes=True)

    def _close(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[self._task]
            self._progress.update(self._task, total=task.total or 1, completed=task.total or 1)

    def finish(self) -> None:
        self._close()
        self._task = None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The guest test image every VM test boots (see docs/guest-image.md)."""


@cli.command()
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to place the image files in (created if missing).",
)
@click.option(
    "--flavour",
    "flavours",
    type=click.Choice(sorted(FLAVOURS)),
    multiple=True,
    help="Kernel flavour: cloud (virtio only, default) or generic (also SATA/AHCI and e1000). Repeatable.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache directory (default: $DVP_CACHE/guest or .cache/guest in the source tree).",
)
@click.option("--rebuild", is_flag=True, help="Build even if an image with the same inputs is cached.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def build(
    out_dir: Path, flavours: tuple[str, ...], cache_dir: Path | None, rebuild: bool, output: str
) -> None:
    """Build the guest image (or reuse the cached one) and place raw, qcow2 and xz files in --out."""
    console = Console(stderr=True)
    results: list[tuple[GuestImage, dict[str, Path]]] = []
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        _BytesColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            for flavour in flavours or ("cloud",):
                reporter = RichReporter(progress, flavour)
                image = ensure_image(flavour, cache_dir=cache_dir, reporter=reporter, rebuild=rebuild)
                reporter.step(f"placing files in {out_dir}")
                results.append((image, export(image, out_dir)))
                reporter.finish()
    except (RuntimeError, ValueError) as exc:
        console.print(f"[red]guest image build failed:[/red] {exc}")
        sys.exit(1)
    if output == "json":
        doc = [
            {
                "flavour": image.flavour,
                "key": image.manifest["key"],
                "kernel": image.manifest["kernel_package"],
                "files": {kind: str(path) for kind, path in placed.items()},
            }
            for image, placed in results
        ]
        click.echo(json.dumps(doc, indent=2))
        return
    table = Table(title="guest test image")
    for col in ("flavour", "kind", "file", "size"):
        table.add_column(col)
    for image, placed in results:
        for kind, path in placed.items():
            table.add_row(image.flavour, kind, str(path), f"{path.stat().st_size / 2**20:.1f} MiB")
    Console().print(table)


if __name__ == "__main__":
    cli(prog_name="python -m nodeimage.guest")
