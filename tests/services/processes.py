"""Process bookkeeping shared by the test services: identities, locks, stopping by PID.

Services started by the test setup (libvirtd, virtlogd, dnsmasq) outlive a single pytest
process when runs overlap, so they are recorded by PID *and* kernel start time (a PID alone
may be reused) in a run directory on tmpfs (`/run/dvp-tests`, cleared on reboot), and every
start/stop decision is taken under a file lock there.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_DIR = Path(os.environ.get("DVP_TEST_RUN_DIR", "/run/dvp-tests"))


@dataclass(frozen=True)
class ProcessId:
    """A process as the kernel knows it: PID plus start time (clock ticks since boot)."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        start = start_time(pid)
        return None if start is None else cls(pid, start)

    def alive(self) -> bool:
        return start_time(self.pid) == self.start

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, int]) -> ProcessId:
        return cls(int(data["pid"]), int(data["start"]))


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, or None if there is no such (non-zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def stop_process(proc: ProcessId, *, timeout: float = 10.0) -> None:
    """SIGTERM the process if it is still the one recorded, SIGKILL it after `timeout`."""
    if not proc.alive():
        return
    os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            return
        time.sleep(0.05)
    if proc.alive():
        os.kill(proc.pid, signal.SIGKILL)
        while proc.alive():
            time.sleep(0.05)


@contextmanager
def locked(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    """Hold an flock on `path` (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, mode)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
