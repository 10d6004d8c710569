"""Step 6: the install, live. The phase runner (`installer.install.engine.run_install`, or the
runner the app was given) works in a worker thread; each event it emits is posted to this
screen with `call_from_thread` and drawn: a row per phase (status, elapsed), a row per phase
and host (current task, ok/changed/failed/skipped counts), an overall progress bar and a log
pane. When the runner returns, the done screen replaces this one. There is no way back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, RichLog, Static

from installer.install.events import (
    PHASES,
    InstallEvent,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    TaskProgress,
)

STATUS_STYLE = {"running": "bold cyan", "ok": "green", "failed": "bold red", "skipped": "dim", "done-before": "green"}


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class ProgressScreen(Screen[None]):
    # no Back binding: the install is under way

    def __init__(self, title: str, *, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.on_ready = on_ready
        self.started = time.monotonic()
        self.phase_started: dict[str, float] = {}
        self.phase_status: dict[str, str] = {p: "pending" for p in PHASES}
        self.tasks: dict[str, TaskProgress] = {}
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{self.title_text} — progress per phase and host; the log pane scrolls.",
                     classes="help-line")
        with Vertical(classes="body"):
            yield Static("", id="elapsed")
            yield ProgressBar(total=len(PHASES), show_eta=False, id="overall")
            phases: DataTable[str | Text] = DataTable(id="phases", cursor_type="none", classes="short")
            for key in ("phase", "status", "elapsed", "message"):
                phases.add_column(key.capitalize(), key=key)
            yield phases
            tasks: DataTable[str | Text] = DataTable(id="tasks", cursor_type="none", classes="short")
            for key in ("phase", "host", "task", "ok", "changed", "failed", "skipped"):
                tasks.add_column(key.capitalize(), key=key)
            yield tasks
            yield RichLog(id="log", markup=False, highlight=False, wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#phases", DataTable)
        for phase in PHASES:
            table.add_row(phase, Text("pending", style="dim"), "", "", key=phase)
        self.set_interval(1.0, self.tick)
        self.tick()
        if self.on_ready is not None:
            self.on_ready()

    def tick(self) -> None:
        now = time.monotonic()
        self.query_one("#elapsed", Static).update(f"elapsed {_elapsed(now - self.started)}")
        table = self.query_one("#phases", DataTable)
        for phase, status in self.phase_status.items():
            if status == "running":
                table.update_cell(phase, "elapsed", _elapsed(now - self.phase_started[phase]))

    def show_event(self, event: InstallEvent) -> None:
        """One engine event, on the UI thread."""
        if isinstance(event, PhaseStarted):
            self.phase_started[event.phase] = time.monotonic()
            self._set_status(event.phase, "running")
            self._log(f"[{event.phase}] started on {', '.join(event.hosts) or 'no hosts'}")
        elif isinstance(event, TaskProgress):
            self._draw_task(event)
        elif isinstance(event, LogLine):
            self._log(f"[{event.phase}]{' ' + event.host + ':' if event.host else ''} {event.text}")
        elif isinstance(event, PhaseFinished):
            self._set_status(event.phase, event.status)
            table = self.query_one("#phases", DataTable)
            table.update_cell(event.phase, "elapsed", _elapsed(event.elapsed))
            table.update_cell(event.phase, "message", event.message)
            done = sum(s in ("ok", "skipped", "done-before") for s in self.phase_status.values())
            self.query_one("#overall", ProgressBar).update(progress=done)
            self._log(f"[{event.phase}] {event.status} in {event.elapsed:.1f} s"
                      f"{': ' + event.message if event.message else ''}")

    def _set_status(self, phase: str, status: str) -> None:
        self.phase_status[phase] = status
        self.query_one("#phases", DataTable).update_cell(phase, "status", Text(status, style=STATUS_STYLE.get(status, "")))

    def _draw_task(self, event: TaskProgress) -> None:
        key = f"{event.phase}/{event.host}"
        table = self.query_one("#tasks", DataTable)
        failed = Text(str(event.failed), style="bold red" if event.failed else "")
        cells = (event.task, str(event.ok), str(event.changed), failed, str(event.skipped))
        if key in self.tasks:
            for column, value in zip(("task", "ok", "changed", "failed", "skipped"), cells, strict=True):
                table.update_cell(key, column, value)
        else:
            table.add_row(event.phase, event.host, *cells, key=key)
        self.tasks[key] = event

    def _log(self, line: str) -> None:
        self.lines.append(line)
        self.query_one("#log", RichLog).write(line)
