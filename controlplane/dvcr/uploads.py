"""Blob upload sessions: POST opens one, PATCH appends (in order), PUT verifies and commits.

Bytes land in `uploads/<uuid>/data` (see `layout`), hashed as they arrive; nothing is
visible under `blobs/` until `finish` has checked the digest and the size and renamed the
file into place. A PATCH cut off in the middle keeps what arrived (the client can ask for
the offset and resume); an upload that is never finished is removed by GC after
`stale_after` seconds. Hash state lives in memory; after a restart it is rebuilt from the
bytes on disk when the session is next used.

Writes and hashing run in a worker thread, double-buffered, so the event loop keeps
receiving while the previous chunk is hashed and written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid as uuidlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from controlplane.dvcr import errors, layout
from controlplane.dvcr.blobs import BlobStore
from controlplane.dvcr.digest import Digest
from controlplane.dvcr.driver import PathNotFound, StorageDriver, Writer
from controlplane.dvcr.errors import RegistryError

BUFFER = 1 << 20  # bytes handed to the writer thread at a time


@dataclass
class UploadSession:
    uuid: str
    repository: str
    started: float
    size: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Uploads:
    def __init__(self, driver: StorageDriver, blobs: BlobStore, *, stale_after: float = 24 * 3600) -> None:
        self.driver = driver
        self.blobs = blobs
        self.stale_after = stale_after
        self._sessions: dict[str, UploadSession] = {}

    def create(self, repository: str) -> UploadSession:
        uuid = str(uuidlib.uuid4())
        now = time.time()
        self.driver.put(layout.upload_info(uuid), json.dumps({"repository": repository, "startedAt": now}).encode())
        self.driver.put(layout.upload_data(uuid), b"")
        s = UploadSession(uuid, repository, now)
        self._sessions[uuid] = s
        return s

    def get(self, repository: str, uuid: str) -> UploadSession:
        s = self._sessions.get(uuid)
        if s is None:
            s = self._load(uuid)
        if s.repository != repository:
            raise errors.upload_unknown(uuid)
        return s

    def _load(self, uuid: str) -> UploadSession:
        """A session from before a restart: its info file, and the hash of the bytes kept."""
        try:
            uuidlib.UUID(uuid)
            info = json.loads(self.driver.get(layout.upload_info(uuid)))
        except (ValueError, PathNotFound) as exc:
            raise errors.upload_unknown(uuid) from exc
        s = UploadSession(uuid, info["repository"], info["startedAt"])
        try:
            with self.driver.read(layout.upload_data(uuid)) as f:
                while chunk := f.read(BUFFER):
                    s.hasher.update(chunk)
                    s.size += len(chunk)
        except PathNotFound:
            pass
        self._sessions[uuid] = s
        return s

    async def append(self, s: UploadSession, stream: AsyncIterator[bytes], *, start: int | None = None,
                     end: int | None = None) -> int:
        """Append a request body. `start`/`end` come from Content-Range: the chunk must begin
        exactly where the upload stands (else 416) and have the announced length."""
        if start is not None and start != s.size:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"chunk starts at byte {start} but the upload holds "
                                f"{s.size} bytes; send the chunk that starts at {s.size}", status=416,
                                headers={"Range": _range(s.size)})
        loop = asyncio.get_running_loop()
        writer = self.driver.ingest(layout.upload_data(s.uuid), append=True)
        if writer.size != s.size:  # bytes on disk and hash state disagree: rebuild from disk
            writer.close()
            self._sessions.pop(s.uuid, None)
            fresh = self._load(s.uuid)
            s.size, s.hasher = fresh.size, fresh.hasher
            self._sessions[s.uuid] = s
            writer = self.driver.ingest(layout.upload_data(s.uuid), append=True)
        received = 0
        pending: asyncio.Future[None] | None = None
        parts: list[bytes] = []  # handed to the writer thread as they came: no joining copy
        held = 0
        try:
            announced = end - start + 1 if start is not None and end is not None else None
            async for chunk in stream:
                if announced is not None and received + len(chunk) > announced:
                    raise RegistryError("BLOB_UPLOAD_INVALID", f"the body is longer than the {announced} bytes "
                                        "Content-Range announced; the excess was not written", status=416,
                                        headers={"Range": _range(s.size)})
                parts.append(chunk)
                held += len(chunk)
                received += len(chunk)
                if held >= BUFFER:
                    if pending is not None:
                        await pending
                    pending = loop.run_in_executor(None, _write, writer, s, parts)
                    parts, held = [], 0
            if pending is not None:
                await pending
                pending = None
            if parts:
                await loop.run_in_executor(None, _write, writer, s, parts)
        except BaseException as exc:
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pending)
            if parts and not errors.no_space(exc):
                with contextlib.suppress(OSError):
                    _write(writer, s, parts)  # what arrived before the break is good, in order
            writer.close()  # keep it: the client may resume from s.size
            if errors.no_space(exc):  # drop it: its bytes hold the room other writes need
                self.cancel(s)
                raise errors.storage_full() from exc
            raise
        writer.close()
        if start is not None and end is not None and end - start + 1 != received:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"Content-Range announced {end - start + 1} bytes but "
                                f"the body had {received}", headers={"Range": _range(s.size)})
        return received

    def finish(self, s: UploadSession, d: Digest, *, expected_size: int | None = None) -> int:
        """Verify and commit: the upload's bytes become blob `d`, or nothing happens."""
        if expected_size is not None and expected_size != s.size:
            raise RegistryError("SIZE_INVALID", f"upload holds {s.size} bytes, expected {expected_size}")
        if d.algorithm == "sha256":
            actual = s.hasher.hexdigest()
        else:
            h = hashlib.new(d.algorithm)
            with self.driver.read(layout.upload_data(s.uuid)) as f:
                while chunk := f.read(BUFFER):
                    h.update(chunk)
            actual = h.hexdigest()
        if actual != d.hex:
            raise RegistryError("DIGEST_INVALID", f"the uploaded content's digest is {d.algorithm}:{actual}, "
                                f"not {d}; nothing was stored", detail={"expected": str(d),
                                                                        "actual": f"{d.algorithm}:{actual}"})
        self.blobs.commit_upload(layout.upload_data(s.uuid), d)
        self.blobs.link(s.repository, d)
        self._drop(s.uuid)
        return s.size

    def cancel(self, s: UploadSession) -> None:
        self._drop(s.uuid)

    def _drop(self, uuid: str) -> None:
        self._sessions.pop(uuid, None)
        with contextlib.suppress(PathNotFound):
            self.driver.delete(layout.upload_dir(uuid))

    def stale(self, *, now: float | None = None, older_than: float | None = None) -> list[str]:
        """Uploads started longer ago than `older_than` seconds (default `stale_after`)."""
        now = now or time.time()
        limit = self.stale_after if older_than is None else older_than
        try:
            names = self.driver.list(layout.UPLOADS)
        except PathNotFound:
            return []
        out = []
        for uuid in names:
            s = self._sessions.get(uuid)
            if s is not None and s.lock.locked():
                continue
            info = self.driver.stat(layout.upload_info(uuid))
            started = info.mtime if info else 0.0
            if s is not None:
                started = s.started
            if now - started >= limit:
                out.append(uuid)
        return out

    def remove_stale(self, uuids: list[str]) -> None:
        for u in uuids:
            self._drop(u)


def _write(writer: Writer, s: UploadSession, parts: list[bytes]) -> None:
    for data in parts:
        writer.write(data)
        s.hasher.update(data)
        s.size += len(data)


def _range(size: int) -> str:
    return f"0-{max(size - 1, 0)}"
