"""An in-memory storage driver: the `driver` contract on a dict.

It exists so the blob store, uploads, manifests and GC can be unit-tested without a disk,
and so the conformance suite proves the contract is not just "whatever the filesystem
driver happens to do".
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from controlplane.dvcr.driver import FileInfo, PathNotFound


class MemoryWriter:
    def __init__(self, driver: MemoryDriver, path: str, *, append: bool) -> None:
        self._driver = driver
        self._path = path
        existing = driver._files.get(path) if append else None
        self._fresh = existing is None
        self._start = 0 if existing is None else len(existing[0])
        self._buf = bytearray(existing[0] if existing is not None else b"")
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._buf)

    def write(self, data: bytes | memoryview) -> int:
        assert not self._closed, "writer is closed"
        self._buf += data
        if not self._fresh:  # appending to an existing file is visible as it happens, as on a disk
            self._driver._store(self._path, bytes(self._buf))
        return len(data)

    def commit(self) -> None:
        assert not self._closed, "writer is closed"
        self._driver._store(self._path, bytes(self._buf))
        self._closed = True

    def close(self) -> None:
        if not self._closed:
            self._driver._store(self._path, bytes(self._buf))
            self._closed = True

    def cancel(self) -> None:
        if not self._fresh and not self._closed:
            self._driver._store(self._path, bytes(self._buf[: self._start]))
        self._closed = True


class MemoryDriver:
    name = "memory"

    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def _store(self, path: str, data: bytes) -> None:
        with self._lock:
            self._files[path] = (data, time.time())

    def _is_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(k.startswith(prefix) for k in self._files)

    def stat(self, path: str) -> FileInfo | None:
        if path in self._files:
            data, mtime = self._files[path]
            return FileInfo(path, len(data), mtime, False)
        if self._is_dir(path):
            return FileInfo(path, 0, 0.0, True)
        return None

    def read(self, path: str, *, offset: int = 0) -> BinaryIO:
        if path not in self._files:
            raise PathNotFound(path)
        f = io.BytesIO(self._files[path][0])
        f.seek(offset)
        return f

    def ingest(self, path: str, *, append: bool = False) -> MemoryWriter:
        return MemoryWriter(self, path, append=append)

    def get(self, path: str) -> bytes:
        if path not in self._files:
            raise PathNotFound(path)
        return self._files[path][0]

    def put(self, path: str, data: bytes) -> None:
        self._store(path, bytes(data))

    def move(self, src: str, dst: str) -> None:
        with self._lock:
            if src not in self._files:
                raise PathNotFound(src)
            self._files[dst] = self._files.pop(src)

    def delete(self, path: str) -> None:
        with self._lock:
            prefix = path.rstrip("/") + "/"
            doomed = [k for k in self._files if k == path or k.startswith(prefix)]
            if not doomed:
                raise PathNotFound(path)
            for k in doomed:
                del self._files[k]

    def list(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        names = {k[len(prefix):].split("/", 1)[0] for k in self._files if k.startswith(prefix)}
        if not names:
            raise PathNotFound(path)
        return sorted(names)

    def walk(self, path: str) -> Iterator[FileInfo]:
        prefix = path.rstrip("/") + "/"
        for k in sorted(self._files):
            if k.startswith(prefix):
                data, mtime = self._files[k]
                yield FileInfo(k, len(data), mtime, False)
