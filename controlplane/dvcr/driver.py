"""The storage driver contract: a small file-like key-value store under one root.

The blob store, the upload sessions, the repository metadata and GC are written against
this contract only; `fsdriver.FilesystemDriver` is the production driver and
`memdriver.MemoryDriver` a second one for unit tests. Every driver must pass the
conformance suite in `tests/unit/dvcr/test_driver_conformance.py`.

Paths are relative, '/'-separated, built by `layout` (never from raw user input).
Guarantees every driver gives:
- `put` and `move` are atomic: a reader sees the old content or the new, never a mix;
- an `ingest` writer's bytes are invisible at its path until `commit()` (for a new file)
  and durable after it; `cancel()` leaves no trace; `append=True` continues an existing
  file (a resumed upload) and its `size` starts at the bytes already there;
- `read` returns a binary file object positioned at `offset`;
- missing paths raise `PathNotFound` (never a bare OSError).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol


class PathNotFound(FileNotFoundError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: not found in storage")
        self.path = path


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool


class Writer(Protocol):
    @property
    def size(self) -> int: ...

    def write(self, data: bytes | memoryview) -> int: ...

    def commit(self) -> None:
        """Make the bytes written so far durable and visible at the path; closes the writer."""

    def cancel(self) -> None:
        """Drop everything this writer wrote (and the file, if it created it); closes the writer."""

    def close(self) -> None:
        """Stop writing but keep what was written (a PATCH that ends; the upload goes on later)."""


class StorageDriver(Protocol):
    name: str

    def stat(self, path: str) -> FileInfo | None: ...

    def read(self, path: str, *, offset: int = 0) -> BinaryIO: ...

    def ingest(self, path: str, *, append: bool = False) -> Writer: ...

    def get(self, path: str) -> bytes: ...

    def put(self, path: str, data: bytes) -> None: ...

    def move(self, src: str, dst: str) -> None: ...

    def delete(self, path: str) -> None:
        """Remove a file or a whole folder; `PathNotFound` when there is nothing."""

    def list(self, path: str) -> list[str]:
        """Names of the direct children of a folder (sorted); `PathNotFound` when missing."""

    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every committed file (not folder) under `path`, recursively, sorted by path;
        nothing when it is missing."""
