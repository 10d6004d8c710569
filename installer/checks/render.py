"""How a preflight report looks: one rich table per host (`-o table`), or the stable JSON
document described in docs/check-json.md (`-o json`); plus the CLI's live progress bars."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from installer.checks.model import CheckResult, HostReport, PreflightReport
from installer.checks.registry import CheckSpec

STYLE = {
    "passed": ("pass", "green"),
    "error": ("FAIL", "bold red"),
    "warning": ("warn", "yellow"),
    "blocked": ("blocked", "dim"),
    "skipped": ("skipped", "dim"),
}


def report_json(report: PreflightReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False)


def _verdict(result: CheckResult) -> Text:
    word, style = STYLE[result.verdict]
    return Text(word, style=style)


def _observed(result: CheckResult) -> Text:
    text = Text()
    if result.message and result.verdict not in ("passed",):
        text.append(result.message, style="bold")
        if result.observed:
            text.append("\n")
    text.append(result.observed)
    return text


def host_table(host: HostReport) -> Table:
    s = host.to_json()["summary"]
    counts = ", ".join(f"{n} {k}" for k, n in s.items() if n)
    table = Table(
        title=f"[bold]{host.name}[/] ({host.address}, {host.role}, {host.connection}) — {counts}",
        title_justify="left",
        show_lines=False,
        expand=True,
    )
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("observed", ratio=3)
    table.add_column("expected", ratio=2)
    table.add_column("fix", ratio=3)
    for r in host.results:
        table.add_row(r.name, _verdict(r), _observed(r), "" if r.blocked_by else r.expected, r.fix)
    return table


LINE_MODE_BELOW = 100
"""Narrower than this (or not a terminal at all), a report is one line per check, not a table."""


def check_line(host: str, r: CheckResult) -> str:
    """`host check result observed — expected — fix`: whole words, nothing cut, greppable."""
    word = STYLE[r.verdict][0]
    observed = " ".join(p for p in (r.message if r.verdict != "passed" else "", r.observed) if p) or "-"
    parts = [observed, "" if r.blocked_by else r.expected, r.fix]
    while parts and not parts[-1]:
        parts.pop()
    return f"{host} {r.name} {word} " + " — ".join(p or "-" for p in parts)


def summary_counts(report: PreflightReport) -> dict[str, int]:
    counts = {"passed": 0, "warning": 0, "error": 0, "blocked": 0, "skipped": 0}
    for h in report.hosts:
        for r in h.results:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
    return counts


def summary_line(report: PreflightReport) -> str:
    """`36 checks: 29 passed, 3 warnings, 0 errors, 4 blocked` — every kind counted, none hidden."""
    c = summary_counts(report)
    total = sum(c.values())
    text = (f"{total} checks: {c['passed']} passed, {c['warning']} warning{'s' if c['warning'] != 1 else ''}, "
            f"{c['error']} error{'s' if c['error'] != 1 else ''}, {c['blocked']} blocked")
    return text + (f", {c['skipped']} skipped" if c["skipped"] else "")


def print_report(report: PreflightReport, console: Console) -> None:
    lines = not console.is_terminal or console.width < LINE_MODE_BELOW
    for host in report.hosts:
        if lines:
            console.print(f"host {host.name}: {host.address}, {host.role}, {host.connection}", highlight=False,
                          markup=False, soft_wrap=True)
            for r in host.results:
                console.print(check_line(host.name, r), highlight=False, markup=False, soft_wrap=True)
        else:
            console.print(host_table(host))
            console.print()
    bad = [h.name for h in report.hosts if not h.ok]
    where = f"{'all ' + str(len(report.hosts)) + ' hosts' if len(report.hosts) > 1 else 'the host'}"
    took = f"profile {report.profile}, {report.duration_ms / 1000:.1f} s"
    if report.ok:
        console.print(f"[green]passed[/] on {where}: {summary_line(report)} ({took})", highlight=False,
                      soft_wrap=lines)
    else:
        console.print(f"[red]failed[/] on {', '.join(bad)}: {summary_line(report)} ({took}). "
                      "Fix the errors, or skip checks by name with --skip.", highlight=False, soft_wrap=lines)


def print_catalog(catalog: list[CheckSpec], console: Console) -> None:
    table = Table(title="preflight checks", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("severity")
    table.add_column("depends on")
    table.add_column("description")
    for spec in catalog:
        sev = spec.severity.value if not callable(spec.severity) else "error or warning (profile, host)"
        table.add_row(spec.name, sev, ", ".join(spec.depends), spec.description)
    console.print(table)


class ProgressListener:
    """Per-host rich progress bars (to stderr) fed by the runner's events."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.fields[host]:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[phase]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressListener:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def host_started(self, host: str, total: int) -> None:
        self._tasks[host] = self.progress.add_task(host, total=total, host=host, phase="starting")

    def host_phase(self, host: str, phase: str) -> None:
        self.progress.update(self._tasks[host], phase=phase)

    def check_finished(self, host: str, result: CheckResult) -> None:
        self.progress.update(self._tasks[host], advance=1)

    def host_finished(self, report: HostReport) -> None:
        phase = "ok" if report.ok else "errors"
        self.progress.update(self._tasks[report.name], phase=phase)
