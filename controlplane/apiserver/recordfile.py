"""A small JSON file of records that several processes share and the API server reads on
every request: `tokens.json` (bearer tokens) and `client-certs.json` (client certificates
issued, and revoked).

Reading costs one `stat` when nothing changed: every write replaces the file, so inode, mtime
and size together tell a change. Every change is a read-modify-write under an exclusive lock on
`<name>.lock`, so no process drops another's records. The file is 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from controlplane.common.pki import write_private_file


class RecordFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int] | None = None

    def read_if_changed(self, *, force: bool = False) -> list[dict[str, Any]] | None:
        """The records when the file changed since the last read (or `force`); None otherwise,
        and when there is no file."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        if signature == self._signature and not force:
            return None
        self._signature = signature
        records: list[dict[str, Any]] = json.loads(self.path.read_text())
        return records

    def write(self, records: list[dict[str, Any]]) -> None:
        """Replace the file (call under `locked()`); the next read sees no change."""
        write_private_file(self.path, json.dumps(records, indent=1).encode())
        st = self.path.stat()
        self._signature = (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
