"""The CLI's view of an install: rich progress lines per phase and host (current task,
ok/changed/failed counts, elapsed time), a plain log when stderr is not a terminal, and the
closing summary (phases, kubeconfig, API, next commands)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from installer.install.events import (
    InstallEvent,
    InstallResult,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    TaskProgress,
)

_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow", "done-before": "cyan", "interrupted": "yellow"}


class ProgressView:
    def __init__(self, console: Console, *, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.phases: list[dict[str, Any]] = []
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=console, transient=False, disable=not enabled)
        self._rows: dict[tuple[str, str], TaskID] = {}
        self._t0 = time.monotonic()

    def __enter__(self) -> ProgressView:
        self._progress.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.__exit__(et, e, tb)

    def _row(self, phase: str, host: str) -> TaskID:
        key = (phase, host)
        if key not in self._rows:
            self._rows[key] = self._progress.add_task(f"{phase:<12} {host}", total=None)
        return self._rows[key]

    def sink(self, event: InstallEvent) -> None:
        if isinstance(event, PhaseStarted):
            self._row(event.phase, "")
            if not self.enabled:
                self.console.print(f"[bold]{event.phase}[/] started on {', '.join(event.hosts)}")
        elif isinstance(event, TaskProgress):
            desc = (f"{event.phase:<12} {event.host:<16} ok={event.ok} changed={event.changed} "
                    f"failed={event.failed}  {event.task[:60]}")
            self._progress.update(self._row(event.phase, event.host), description=desc)
        elif isinstance(event, LogLine):
            if event.text.startswith(("failed", "unreachable", "warning")) or not self.enabled:
                where = f"{event.host}: " if event.host else ""
                self.console.print(f"  [dim]{event.phase}[/] {where}{event.text}", highlight=False)
        elif isinstance(event, PhaseFinished):
            self.phases.append({"phase": event.phase, "status": event.status, "elapsed": round(event.elapsed, 2),
                                "message": event.message})
            style = _STYLE.get(event.status, "white")
            for (phase, host), task in self._rows.items():
                if phase == event.phase:
                    label = f"{phase:<12} {host or '':<16}" if host else f"{phase:<12}"
                    self._progress.update(task, description=f"[{style}]{label} {event.status}[/]",
                                          total=1, completed=1)
            if not self.enabled:
                self.console.print(f"[bold]{event.phase}[/] [{style}]{event.status}[/] "
                                   f"({event.elapsed:.1f} s) {event.message}", highlight=False)


def print_result(console: Console, result: InstallResult, phases: list[dict[str, Any]]) -> None:
    if console.is_terminal and console.width >= 100:
        table = Table(title="dvp install", show_lines=False, expand=True)
        for col in ("phase", "status", "time"):
            table.add_column(col, no_wrap=True)
        table.add_column("details", overflow="fold")
        for p in phases:
            style = _STYLE.get(p["status"], "white")
            table.add_row(p["phase"], f"[{style}]{p['status']}[/]", f"{p['elapsed']:.1f} s", p["message"])
        console.print(table)
    else:  # one whole line per phase: nothing cut, whatever the width
        for p in phases:
            console.print(f"{p['phase']} {p['status']} {p['elapsed']:.1f} s {p['message']}".rstrip(),
                          highlight=False, markup=False, soft_wrap=True)
    console.print(f"run directory: {result.run_dir}", highlight=False, soft_wrap=True)
    if result.interrupted:
        console.print(f"[yellow]install interrupted in phase {result.failed_phase}[/]; to continue, run:",
                      highlight=False)
        for step in result.next_steps:
            console.print(f"  {step}", highlight=False, markup=False, soft_wrap=True)
        return
    if not result.ok:
        console.print(f"[red]install failed in phase {result.failed_phase}:[/] {result.message}",
                      highlight=False, soft_wrap=True)
        for step in result.next_steps:
            console.print(f"  {step}", highlight=False, markup=False, soft_wrap=True)
        return
    console.print(f"[green]{result.message}[/]")
    if result.kubeconfig:
        console.print(f"kubeconfig: {result.kubeconfig}", highlight=False, soft_wrap=True)
    if result.api_url:
        console.print(f"API: {result.api_url}")
    console.print(f"changed tasks: {sum(result.changed.values())} "
                  f"({', '.join(f'{h}={n}' for h, n in sorted(result.changed.items())) or 'none'})")
    if result.next_steps:
        console.print("next:")
        for step in result.next_steps:
            console.print(f"  {step}", highlight=False, markup=False, soft_wrap=True)
