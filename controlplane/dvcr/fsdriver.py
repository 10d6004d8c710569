"""The filesystem storage driver: the contract of `driver` on a local directory.

Atomicity comes from rename(2) within one filesystem; durability from fdatasync before a
rename makes something visible, and an fsync of the parent folder after it. Large writes
start the kernel's writeback every 32 MiB (sync_file_range), so the fdatasync at commit
does not have a whole disk image to flush at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from controlplane.common.durable import fsync_dir
from controlplane.common.filemodes import make_private_dirs
from controlplane.dvcr.driver import FileInfo, PathNotFound

T = TypeVar("T")
WRITEBACK_EVERY = 32 << 20  # start writing a big upload to disk as it arrives, not all at commit
_SYNC_FILE_RANGE_WRITE = 2


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
        fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
        return fn
    except (OSError, AttributeError):
        return None


_sync_file_range = _libc_sync_file_range()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fsync_dir(path)


def _retry_in_dir(folder: Path, op: Callable[[], T]) -> T:
    """Run `op` after creating `folder`; again if a concurrent delete pruned the folder meanwhile."""
    for attempt in range(5):
        try:
            make_private_dirs(folder)  # its own mkdir fails too when a prune removes a parent meanwhile
            return op()
        except FileNotFoundError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


class FileWriter:
    """Appends to a file. A new file is written under a temporary name and renamed on commit."""

    def __init__(self, target: Path, *, append: bool) -> None:
        self.target = target
        self._fresh = not (append and target.exists())
        self.path = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp") if self._fresh else target
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self._fresh else os.O_APPEND)
        self._fd: int | None = _retry_in_dir(target.parent, lambda: os.open(self.path, flags, 0o600))
        self._size = self._start = self._flushed = os.fstat(self._fd).st_size

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> int:
        assert self._fd is not None, "writer is closed"
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self._size += n
        if _sync_file_range is not None and self._size - self._flushed >= WRITEBACK_EVERY:
            # asynchronous writeback of what is written so far; commit's fdatasync then has little left
            _sync_file_range(self._fd, self._flushed, self._size - self._flushed, _SYNC_FILE_RANGE_WRITE)
            self._flushed = self._size
        return len(data)

    def commit(self) -> None:
        assert self._fd is not None, "writer is closed"
        os.fdatasync(self._fd)
        os.close(self._fd)
        self._fd = None
        if self._fresh:
            os.replace(self.path, self.target)
            _fsync_dir(self.target.parent)

    def close(self) -> None:
        """Keep what was written (visible at the target, to be appended to later)."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        if self._fresh:
            os.replace(self.path, self.target)

    def cancel(self) -> None:
        if self._fd is not None:
            if not self._fresh:
                os.ftruncate(self._fd, self._start)
            os.close(self._fd)
            self._fd = None
        if self._fresh:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class FilesystemDriver:
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root
        make_private_dirs(root)

    def _p(self, path: str) -> Path:
        assert ".." not in path.split("/") and not path.startswith("/"), path
        return self.root / path

    def local_path(self, path: str) -> Path:
        """Where a stored file lives (callers that can use a real file, e.g. to sendfile it)."""
        return self._p(path)

    def stat(self, path: str) -> FileInfo | None:
        try:
            st = self._p(path).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileInfo(path, st.st_size, st.st_mtime, os.path.isdir(self._p(path)))

    def read(self, path: str, *, offset: int = 0) -> BinaryIO:
        try:
            f = self._p(path).open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise PathNotFound(path) from exc
        if offset:
            f.seek(offset)
        return f

    def ingest(self, path: str, *, append: bool = False) -> FileWriter:
        return FileWriter(self._p(path), append=append)

    def get(self, path: str) -> bytes:
        try:
            return self._p(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise PathNotFound(path) from exc

    def put(self, path: str, data: bytes) -> None:
        w = self.ingest(path)
        try:
            w.write(data)
            w.commit()
        except BaseException:
            w.cancel()
            raise

    def move(self, src: str, dst: str) -> None:
        s, d = self._p(src), self._p(dst)
        if not s.exists():
            raise PathNotFound(src)
        _retry_in_dir(d.parent, lambda: os.replace(s, d))
        _fsync_dir(d.parent)

    def delete(self, path: str) -> None:
        p = self._p(path)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            try:
                p.unlink()
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise PathNotFound(path) from exc
        self._prune(p.parent)

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty up to the root, so listings show only live entries."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def list(self, path: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self._p(path)) if not n.startswith(".") or not n.endswith(".tmp"))
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise PathNotFound(path) from exc

    def walk(self, path: str) -> Iterator[FileInfo]:
        base = self._p(path)
        found: list[FileInfo] = []
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.startswith(".") and f.endswith(".tmp"):
                    continue  # a writer's file not yet committed
                full = Path(dirpath) / f
                try:
                    st = full.stat()
                except FileNotFoundError:
                    continue
                found.append(FileInfo(str(full.relative_to(self.root)), st.st_size, st.st_mtime, False))
        yield from sorted(found, key=lambda i: i.path)
