"""HTTP handlers for blobs and blob uploads (OCI Distribution: pull and push of blobs).

    HEAD/GET    /v2/<name>/blobs/<digest>            (GET honours a single `Range`)
    DELETE      /v2/<name>/blobs/<digest>            withdraws it from the repository
    POST        /v2/<name>/blobs/uploads/            new session; `?digest=` monolithic;
                                                     `?mount=<digest>&from=<repo>` cross mount
    PATCH       /v2/<name>/blobs/uploads/<uuid>      append (in order; `Content-Range` optional)
    PUT         /v2/<name>/blobs/uploads/<uuid>?digest=   last chunk (optional) + commit
    GET         /v2/<name>/blobs/uploads/<uuid>      status: `Range: 0-<last byte>`
    DELETE      /v2/<name>/blobs/uploads/<uuid>      cancel
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import BinaryIO

from aiohttp import web

from controlplane.dvcr import errors
from controlplane.dvcr.digest import Digest, check_name, parse_digest
from controlplane.dvcr.errors import RegistryError
from controlplane.dvcr.store import RegistryStore
from controlplane.dvcr.uploads import UploadSession, _range

READ_CHUNK = 1 << 20
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(\d+|\*))?$")


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_any():
        yield chunk


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    m = RANGE_RE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise RegistryError("BLOB_UNKNOWN", f"unsupported Range {header!r}; use one range bytes=START-END",
                            status=416, headers={"Content-Range": f"bytes */{size}"})
    if not m.group(1):
        n = int(m.group(2))
        start, end = max(size - n, 0), size - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if start >= size or start > end:
        raise RegistryError("BLOB_UNKNOWN", f"Range {header!r} is outside the blob's {size} bytes", status=416,
                            headers={"Content-Range": f"bytes */{size}"})
    return start, end


async def _stream_file(resp: web.StreamResponse, f: BinaryIO, remaining: int) -> None:
    """Send `remaining` bytes, reading the next chunk in a thread while this one is sent."""
    loop = asyncio.get_running_loop()
    try:
        nxt = loop.run_in_executor(None, f.read, min(READ_CHUNK, remaining))
        while remaining > 0:
            chunk = await nxt
            if not chunk:
                break
            remaining -= len(chunk)
            if remaining > 0:
                nxt = loop.run_in_executor(None, f.read, min(READ_CHUNK, remaining))
            await resp.write(chunk)
    finally:
        f.close()


class BlobHandlers:
    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    async def get(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        d = parse_digest(digest)
        info = self.store.blobs.stat_in(name, d)
        if info is None:
            raise errors.blob_unknown(digest)
        headers = {"Docker-Content-Digest": str(d), "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                   "ETag": f'"{d}"', "Cache-Control": "max-age=31536000"}
        start, end, status = 0, info.size - 1, 200
        if "Range" in request.headers and info.size > 0:
            rng = _parse_range(request.headers["Range"], info.size)
            assert rng is not None
            start, end = rng
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        length = max(end - start + 1, 0)
        headers["Content-Length"] = str(length)
        if request.method == "HEAD":
            return web.Response(status=status, headers=headers)
        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        if length:
            await _stream_file(resp, self.store.blobs.open(d, offset=start), length)
        await resp.write_eof()
        return resp

    async def delete(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        d = parse_digest(digest)
        async with self.store.gate.write():
            if not self.store.blobs.unlink(name, d):
                raise errors.blob_unknown(digest)
        return web.Response(status=202, headers={"Content-Length": "0"})

    # --- uploads ---------------------------------------------------------------------------
    def _location(self, s: UploadSession) -> dict[str, str]:
        return {"Location": f"/v2/{s.repository}/blobs/uploads/{s.uuid}", "Docker-Upload-UUID": s.uuid,
                "Range": _range(s.size), "Content-Length": "0", "OCI-Chunk-Min-Length": "0"}

    def _created(self, name: str, d: Digest) -> web.Response:
        return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{d}", "Docker-Content-Digest": str(d),
                                                 "Content-Length": "0"})

    async def start(self, request: web.Request, name: str) -> web.StreamResponse:
        check_name(name)
        q = request.query
        if "mount" in q:
            d = parse_digest(q["mount"])
            source = q.get("from")
            async with self.store.gate.write():
                ok = self.store.blobs.stat_in(check_name(source), d) if source else self.store.blobs.stat(d)
                if ok is not None:
                    self.store.blobs.link(name, d)
                    return self._created(name, d)
        if "digest" in q:
            d = parse_digest(q["digest"])
            async with self.store.gate.write():
                s = self.store.uploads.create(name)
                try:
                    await self.store.uploads.append(s, body_chunks(request))
                    self.store.uploads.finish(s, d, expected_size=request.content_length)
                except BaseException:
                    self.store.uploads.cancel(s)
                    raise
            return self._created(name, d)
        async with self.store.gate.write():
            s = self.store.uploads.create(name)
        return web.Response(status=202, headers=self._location(s))

    def _content_range(self, request: web.Request) -> tuple[int | None, int | None]:
        header = request.headers.get("Content-Range")
        if not header:
            return None, None
        m = CONTENT_RANGE_RE.match(header.strip())
        if not m:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"Content-Range {header!r} is not START-END", status=416)
        start, end = int(m.group(1)), int(m.group(2))
        if end < start:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"Content-Range {header!r} ends before it starts", status=416)
        length = request.content_length
        if length is not None and length != end - start + 1:  # refused before a byte is written
            raise RegistryError("BLOB_UPLOAD_INVALID", f"Content-Range {header!r} announces {end - start + 1} bytes "
                                f"but Content-Length is {length}; nothing was written", status=416)
        return start, end

    async def patch(self, request: web.Request, name: str, uuid: str) -> web.StreamResponse:
        if self.store.gate.read_only:
            raise errors.read_only()
        s = self.store.uploads.get(name, uuid)
        start, end = self._content_range(request)
        async with s.lock:
            await self.store.uploads.append(s, body_chunks(request), start=start, end=end)
        return web.Response(status=202, headers=self._location(s))

    async def finish(self, request: web.Request, name: str, uuid: str) -> web.StreamResponse:
        if "digest" not in request.query:
            raise RegistryError("DIGEST_INVALID", "PUT that completes an upload needs ?digest=")
        d = parse_digest(request.query["digest"])
        s = self.store.uploads.get(name, uuid)
        start, end = self._content_range(request)
        async with self.store.gate.write(), s.lock:
            if request.content_length or request.headers.get("Transfer-Encoding", "").lower() == "chunked":
                await self.store.uploads.append(s, body_chunks(request), start=start, end=end)
            await asyncio.get_running_loop().run_in_executor(None, self.store.uploads.finish, s, d)
        return self._created(name, d)

    async def status(self, request: web.Request, name: str, uuid: str) -> web.StreamResponse:
        s = self.store.uploads.get(name, uuid)
        return web.Response(status=204, headers=self._location(s))

    async def cancel(self, request: web.Request, name: str, uuid: str) -> web.StreamResponse:
        s = self.store.uploads.get(name, uuid)
        async with s.lock:
            self.store.uploads.cancel(s)
        return web.Response(status=204, headers={"Content-Length": "0"})
