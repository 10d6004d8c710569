"""Ctrl-C (SIGINT) and SIGTERM during an install: not a failure but an interruption.

`catch_signals()` (used by the CLI around `run_install`) turns the first SIGINT/SIGTERM into a
flag on `Interrupt` instead of a KeyboardInterrupt in the middle of some library call:
ansible-runner polls `Interrupt.is_set` as its cancel callback and stops ansible-playbook, the
engine records the phase as `interrupted` (resumable like any unfinished phase) and prints the
exact `--resume` command. A second signal gets the default behaviour (the user insists).

Ansible's SSH ControlMaster processes (ControlPersist keeps them for a minute after a run) live
in a directory of their own per install process (`control_dir()`); `close_control_masters()`
asks each to exit after every Ansible phase, interrupted or not, so none is left behind. An
install process killed outright (SIGKILL, a lost terminal) leaves its directory: the next
`control_dir()` of the same user removes the directories of processes that no longer run.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType


class Interrupt:
    """Set once a SIGINT/SIGTERM arrived; says which."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""

    def set(self, signal_name: str) -> None:
        self.signal_name = self.signal_name or signal_name
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@contextmanager
def catch_signals(interrupt: Interrupt) -> Iterator[Interrupt]:
    """While inside: SIGINT/SIGTERM set `interrupt`; a second one acts as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        interrupt.set(signal.Signals(signum).name)
        for s, old in previous.items():  # a second Ctrl-C: the default (or earlier) behaviour
            signal.signal(s, old)

    for s in previous:
        signal.signal(s, handler)
    try:
        yield interrupt
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


CONTROL_PREFIX = "dvp-cp"


def control_dir() -> Path:
    """Short (socket paths are limited to 107 bytes) and private to this install process."""
    base = Path(tempfile.gettempdir())
    _remove_orphans(base)
    path = base / f"{CONTROL_PREFIX}-{os.getuid()}-{os.getpid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _remove_orphans(base: Path) -> None:
    """Close and remove this user's control directories whose install process is gone."""
    for directory in base.glob(f"{CONTROL_PREFIX}-{os.getuid()}-*"):
        pid = directory.name.rsplit("-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)) and _ours(directory):
            close_control_masters(directory)


def _ours(directory: Path) -> bool:
    """A real directory (not a link someone else put in the shared temporary directory) of ours,
    still there (another install of ours may have removed it since the glob)."""
    try:
        st = directory.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process of that number
    return True


def close_control_masters(directory: Path) -> int:
    """Ask every SSH ControlMaster with a socket in `directory` to exit; remove the directory."""
    closed = 0
    if not directory.is_dir():
        return 0
    for sock in directory.iterdir():
        done = subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "dvp-control-master"],
                              capture_output=True, timeout=10, check=False)
        closed += done.returncode == 0
    shutil.rmtree(directory, ignore_errors=True)
    return closed
