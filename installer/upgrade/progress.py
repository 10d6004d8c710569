"""How an upgrade shows its progress: a rich progress bar per host (current step, elapsed) on
a terminal, plain lines otherwise, and every event in the run directory's `upgrade.log`.

The run directory is `~/.local/state/dvp/runs/<time>-upgrade/` (or under `--state-dir`), as for
`dvp install`: the plan, the log, the final record and the kubeconfig fetched from the server
(0600).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

DEFAULT_STATE_DIR = Path(os.environ.get("XDG_STATE_HOME", "~/.local/state")).expanduser() / "dvp"


def make_run_dir(state_dir: Path | None) -> Path:
    base = (state_dir or DEFAULT_STATE_DIR) / "runs"
    run = base / f"{time.strftime('%Y%m%dT%H%M%S')}-upgrade-{os.getpid()}"
    run.mkdir(parents=True, exist_ok=True)
    run.chmod(0o700)
    return run


class ProgressView:
    """The upgrade's Reporter: rich bars on a terminal, lines otherwise, always the log file."""

    def __init__(self, run_dir: Path, *, console: Console, steps: dict[str, int] | None = None) -> None:
        self.log_path = run_dir / "upgrade.log"
        self._log = self.log_path.open("a", buffering=1)
        self.console = console
        self.live = console.is_terminal
        self._progress = Progress(TextColumn("{task.fields[host]:<14}"), BarColumn(bar_width=24),
                                  TextColumn("{task.completed}/{task.total}"), TextColumn("{task.description}"),
                                  TimeElapsedColumn(), console=console, transient=False)
        self._tasks: dict[str, TaskID] = {}
        self._steps = steps or {}

    def __enter__(self) -> ProgressView:
        if self.live:
            self._progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.live:
            self._progress.stop()
        self._log.close()

    def log(self, text: str) -> None:
        self._log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")

    def __call__(self, host: str, step: str, state: str, detail: str) -> None:
        self.log(f"{host} {step} {state} {detail}".rstrip())
        if not self.live:
            if state != "wait":
                self.console.print(f"{host}: {step} {state}" + (f" — {detail}" if detail else ""), highlight=False)
            return
        if host not in self._tasks:
            self._tasks[host] = self._progress.add_task("", host=host, total=self._steps.get(host, 8))
        task = self._tasks[host]
        colour = {"ok": "green", "failed": "red", "skipped": "dim", "wait": "yellow"}.get(state, "cyan")
        text = f"[{colour}]{step} {state}[/]" + (f" {detail[:70]}" if detail else "")
        self._progress.update(task, description=text)
        if state in ("ok", "skipped"):
            self._progress.advance(task)
        if state == "failed":
            self._progress.console.print(f"[red]{host}: {step} failed:[/] {detail}")
