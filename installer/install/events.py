"""What an install run reports while it works: the one stream both front ends render.

The phase engine (`installer.install.engine`) emits these to a sink callable; the CLI turns
them into rich progress bars, the TUI into its progress screen and log pane, and the run
directory keeps them as `events.jsonl`. They carry no secrets: task names, host names,
counts and messages already scrubbed by the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PhaseName = Literal["validate", "preflight", "prepare", "bootstrap", "controlplane", "verify"]
PHASES: tuple[PhaseName, ...] = ("validate", "preflight", "prepare", "bootstrap", "controlplane", "verify")
PhaseStatus = Literal["ok", "failed", "skipped", "done-before", "interrupted"]


@dataclass(frozen=True)
class PhaseStarted:
    """A phase began on these hosts."""

    phase: PhaseName
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class TaskProgress:
    """One host's progress in a phase: the task it runs now and its counts so far."""

    phase: PhaseName
    host: str
    task: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class LogLine:
    """A line for the log pane / log file."""

    phase: PhaseName
    text: str
    host: str | None = None


@dataclass(frozen=True)
class PhaseFinished:
    """A phase ended; `message` names host, task and reason when it failed."""

    phase: PhaseName
    status: PhaseStatus
    elapsed: float
    message: str = ""


InstallEvent = PhaseStarted | TaskProgress | LogLine | PhaseFinished
EventSink = Callable[[InstallEvent], None]


@dataclass
class InstallResult:
    """How a run ended, and what the user does next."""

    ok: bool
    run_dir: Path
    kubeconfig: Path | None = None
    api_url: str | None = None
    failed_phase: PhaseName | None = None
    message: str = ""
    next_steps: list[str] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)
    """Changed Ansible tasks per host in this run (all zero when re-running an install)."""
    interrupted: bool = False
    """Stopped by SIGINT/SIGTERM (the phase is recorded as `interrupted`; `--resume` continues)."""
