"""The lock around changes of this node's qcow2 backing chains (`volume_chain.py`).

Two kinds of change meet on the chains:
- *adding* a file on top of existing ones: a snapshot of a stopped disk (`freeze`: the disk's
  file renamed to the snapshot's, a new overlay at the disk's path) and a volume made from a
  snapshot (`overlay`). Each touches one path of its own (the disk, or the new volume) and only
  reads the files below, which no other addition renames;
- *reshaping* chains: deleting a file others are built on (`release` commits and renames files
  that others name as backing), and the recovery of an interrupted freeze.

Additions on different paths run at once (shared), so that the disks of one VirtualMachineSnapshot
or of one restore are made in parallel; two on the same path wait for each other; a reshape runs
alone (exclusive, re-entrant for its thread) and new additions wait while one is queued, so a
stream of snapshots cannot starve a delete.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType


class ChainLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        """The thread holding it exclusively."""
        self._depth = 0
        self._paths: set[Path] = set()
        """Paths of the additions under way (shared holders)."""
        self._queued = 0
        """Threads waiting to hold it exclusively."""

    # -- exclusive: `with lock:` ----------------------------------------------------------------
    def __enter__(self) -> ChainLock:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return self
            self._queued += 1
            try:
                while self._owner is not None or self._paths:
                    self._cond.wait()
            finally:
                self._queued -= 1
            self._owner, self._depth = me, 1
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    # -- shared, one holder per path ------------------------------------------------------------
    @contextmanager
    def adding(self, path: Path) -> Iterator[None]:
        """Held while a file is added at `path` on top of existing files."""
        key = path.absolute()
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:  # inside a reshape of this thread: already alone
                nested = True
            else:
                nested = False
                while self._owner is not None or self._queued or key in self._paths:
                    self._cond.wait()
                self._paths.add(key)
        try:
            yield
        finally:
            if not nested:
                with self._cond:
                    self._paths.discard(key)
                    self._cond.notify_all()

    def idle(self) -> bool:
        """Nobody holds it (for tests)."""
        with self._cond:
            return self._owner is None and not self._paths
