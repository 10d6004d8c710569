"""The uploader: upload URLs that accept `curl -T FILE URL`, and a resumable chunked form.

    POST   /dvcr/v1/uploads            (push role) {"repository", "tag"?, "checksums"?, "ttlSeconds"?}
                                       -> 201 {"id", "url": "https://host:port/upload/<token>", "expiresAt", ...}
    GET    /dvcr/v1/uploads/<id>       (pull role) status: phase, offset, total, progress, result, error
    DELETE /dvcr/v1/uploads/<id>       (push role) cancel
    PUT    /upload/<token>             the whole image as the body (curl -T); answers with the result
    PATCH  /upload/<token>             one chunk; `Content-Range: bytes START-END/TOTAL` (START must
                                       equal the current offset, else 416 with `Upload-Offset`)
    HEAD   /upload/<token>             `Upload-Offset` (bytes received) and `Upload-Length`
    GET    /upload/<token>             status, as above

The token in the URL is the credential (256 random bits, expiring). Bytes go through the
same pipeline as any import (checksums, gzip/xz, format detection) straight into DVCR's
store; the request that completes the image answers with the import result or the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from controlplane.common.pki import fingerprint
from controlplane.dvcr.app import UPLOAD_PATH_PREFIX, RegistryApp, error_response
from controlplane.dvcr.digest import check_name, check_tag
from controlplane.dvcr.errors import RegistryError
from controlplane.dvcr.importer.checksum import Checksums
from controlplane.dvcr.importer.errors import ImportFailed
from controlplane.dvcr.importer.pipeline import import_image
from controlplane.dvcr.importer.progress import Progress
from controlplane.dvcr.importer.sink import StoreSink
from controlplane.dvcr.importer.sources import StreamSource
from controlplane.dvcr.importer.streams import rechunk
from controlplane.dvcr.store import RegistryStore
from controlplane.dvcr.tickets import EXPIRED, FAILED, READY, UPLOADING, WAITING, Ticket, Tickets
from controlplane.dvcr.uploadrequest import parse_create, parse_offset

log = logging.getLogger(__name__)
RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_EOF = b""


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), headers={"Content-Type": "application/json",
                                                                         **(headers or {})})


class _Run:
    """One upload in progress: a queue feeding the import pipeline running as a task."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)
        self.task: asyncio.Task[Any] | None = None
        self.lock = asyncio.Lock()
        self.last_activity = time.monotonic()

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) != _EOF:
            yield chunk

    async def feed(self, chunk: bytes) -> bool:
        """Hand a chunk to the pipeline; False when the pipeline has already stopped."""
        assert self.task is not None
        if self.task.done():
            return False
        put = asyncio.ensure_future(self.queue.put(chunk))
        done, _ = await asyncio.wait({put, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if put not in done:
            put.cancel()
            return False
        return True


class UploadService:
    def __init__(self, store: RegistryStore, registry: RegistryApp, *, base_url: Callable[[], str],
                 ttl: float = 24 * 3600, idle_timeout: float = 600.0, spool_dir: Path | None = None) -> None:
        self.store = store
        self.registry = registry
        self.base_url = base_url
        self.ttl = ttl
        self.idle_timeout = idle_timeout
        self.spool_dir = spool_dir
        self.tickets = Tickets(store.driver)
        self._runs: dict[str, _Run] = {}
        self._loop_task: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/dvcr/v1/uploads", self._create)
        app.router.add_route("*", "/dvcr/v1/uploads/{id}", self._ticket_api)
        app.router.add_route("*", UPLOAD_PATH_PREFIX + "{token}", self._upload)

    async def start(self) -> None:
        self.tickets.load()
        self._loop_task = asyncio.create_task(self._expiry_loop())

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for run in self._runs.values():
            if run.task is not None:
                run.task.cancel()

    async def _expiry_loop(self) -> None:
        while True:
            self.tickets.expire()
            await self.reap_idle()
            await asyncio.sleep(30)

    async def reap_idle(self, *, now: float | None = None) -> None:
        """Give up on uploads whose client went away and did not resume within `idle_timeout`:
        the URL stays valid and the next upload starts from byte 0."""
        now = now or time.monotonic()
        for tid, run in list(self._runs.items()):
            t = self.tickets.get(tid)
            if t is None or run.lock.locked() or now - run.last_activity < self.idle_timeout:
                continue
            await self._abort(t, None)
            t.error = {"reason": "UploadInterrupted", "message": f"no data for {int(self.idle_timeout)} s after "
                       f"byte {t.offset}; upload again"}
            t.phase, t.offset, t.progress = WAITING, 0, None
            self.tickets.save(t)

    # --- the library call controllers use (in-process), also behind POST /dvcr/v1/uploads ---
    def create(self, repository: str, *, tag: str = "latest", checksums: dict[str, str] | None = None,
               ttl: float | None = None) -> dict[str, Any]:
        check_name(repository)
        check_tag(tag)
        sums = Checksums(checksums).expected
        ticket, token = self.tickets.create(repository, tag, checksums=sums, ttl=ttl or self.ttl)
        log.info("dvcr: upload URL %s issued for %s:%s (token %s)", ticket.id, repository, tag, fingerprint(token))
        return {**ticket.status(), "url": f"{self.base_url()}/upload/{token}"}

    def status(self, ticket_id: str) -> dict[str, Any] | None:
        t = self.tickets.get(ticket_id)
        return None if t is None else t.status()

    # --- authenticated API ------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.registry.identify(request, "push")
            req = parse_create(orjson.loads(await request.read()))
            out = self.create(req.repository, tag=req.tag, checksums=req.checksums, ttl=req.ttl)
        except RegistryError as exc:
            return error_response(exc)
        except (orjson.JSONDecodeError, ImportFailed, ValueError, TypeError) as exc:
            return error_response(RegistryError("UNSUPPORTED", f"invalid upload request: {exc}", status=400))
        return _json(out, 201)

    async def _ticket_api(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.registry.identify(request, "pull" if request.method == "GET" else "push")
        except RegistryError as exc:
            return error_response(exc)
        t = self.tickets.get(request.match_info["id"])
        if t is None:
            return error_response(RegistryError("UNSUPPORTED", "no such upload", status=404))
        if request.method == "GET":
            return _json(t.status())
        if request.method == "DELETE":
            await self._abort(t, {"reason": "Cancelled", "message": "the upload was cancelled"})
            t.phase, t.expires_at = EXPIRED, min(t.expires_at, t.created_at)
            self.tickets.save(t)
            return _json(t.status())
        return error_response(RegistryError("UNSUPPORTED", f"{request.method} not allowed", status=405))

    # --- the upload URL ------------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.StreamResponse:
        t = self.tickets.by_token(request.match_info["token"])
        if t is not None and t.phase in (WAITING, FAILED) and time.time() >= t.expires_at:
            t.phase = EXPIRED
            self.tickets.save(t)
        if t is None or t.phase == EXPIRED:
            return _json({"error": "this upload URL is unknown or has expired"}, 404)
        if request.method == "GET":
            return _json(t.status())
        if request.method == "HEAD":
            return web.Response(headers=self._offset_headers(t))
        if request.method not in ("PUT", "PATCH", "POST"):
            return _json({"error": f"{request.method} is not supported; PUT the file or PATCH chunks"}, 405)
        if t.phase == READY:
            return _json({"error": "this upload is already complete", "status": t.status()}, 409)
        start, total = 0, request.content_length
        header = request.headers.get("Content-Range")
        if header:
            m = RANGE_RE.match(header.strip())
            if not m:
                return _json({"error": f"Content-Range {header!r}: expected bytes START-END/TOTAL"}, 400)
            start, end, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if end < start or end >= total:
                return _json({"error": f"Content-Range {header!r} is not inside 0-{total - 1}"}, 400)
        elif request.method == "PATCH" and "Upload-Offset" in request.headers:
            try:
                start = parse_offset(request.headers["Upload-Offset"])
            except RegistryError as exc:
                return _json({"error": exc.message, "field": "Upload-Offset"}, 400, self._offset_headers(t))
        elif request.method == "PATCH":
            start = t.offset
        run = self._runs.get(t.id)
        whole = request.method == "PUT" and not header  # `curl -T`: the whole image, its own length
        if whole and run is not None and run.lock.locked():
            return _json({"error": "another upload to this URL is sending data now; wait for it to end, or cancel "
                          "the upload and ask for a new URL"}, 409, self._offset_headers(t))
        if start == 0 and (run is None or t.phase in (WAITING, FAILED) or whole):  # a PUT starts over
            await self._abort(t, None)
            run = self._begin(t, total)
        if run is None or start != t.offset:
            return _json({"error": f"this chunk starts at byte {start} but the upload holds {t.offset} bytes; "
                          f"send the bytes from {t.offset}"}, 416, self._offset_headers(t))
        return await self._receive(request, t, run)

    def _offset_headers(self, t: Ticket) -> dict[str, str]:
        h = {"Upload-Offset": str(t.offset), "Cache-Control": "no-store"}
        if t.total is not None:
            h["Upload-Length"] = str(t.total)
        if t.offset:
            h["Range"] = f"bytes=0-{t.offset - 1}"
        return h

    def _begin(self, t: Ticket, total: int | None) -> _Run:
        run = _Run()
        t.phase, t.offset, t.total, t.error, t.result, t.progress = UPLOADING, 0, total, None, None, None
        self.tickets.save(t)

        def progress(p: Progress) -> None:
            t.progress = p.to_json()

        sink = StoreSink(self.store, self.base_url().split("://", 1)[-1])
        source = StreamSource(run.chunks(), total, description="upload")
        run.task = asyncio.create_task(import_image(source, sink, t.repository, tag=t.tag, checksums=t.checksums,
                                                    progress=progress, spool_dir=self.spool_dir))
        run.task.add_done_callback(lambda task: self._finished(t, task))
        self._runs[t.id] = run
        return run

    def _finished(self, t: Ticket, task: asyncio.Task[Any]) -> None:
        if self._runs.get(t.id) is not None and self._runs[t.id].task is task:
            self._runs.pop(t.id, None)
        if task.cancelled() or t.phase != UPLOADING:
            return
        exc = task.exception()
        if exc is None:
            t.phase, t.result, t.error = READY, task.result().to_json(), None
        else:
            t.phase = FAILED
            t.error = exc.to_json() if isinstance(exc, ImportFailed) else {
                "reason": "InternalError", "message": f"{type(exc).__name__}: {exc}"}
        self.tickets.save(t)

    async def _abort(self, t: Ticket, error: dict[str, Any] | None) -> None:
        run = self._runs.pop(t.id, None)
        if run is not None and run.task is not None and not run.task.done():
            run.task.cancel()
            with contextlib.suppress(BaseException):
                await run.task
        if error is not None:
            t.phase, t.error = FAILED, error

    async def _receive(self, request: web.Request, t: Ticket, run: _Run) -> web.StreamResponse:
        async with run.lock:
            stopped = False
            try:
                async for chunk in rechunk(request.content.iter_any()):
                    if not await run.feed(chunk):
                        stopped = True
                        break
                    t.offset += len(chunk)
                    run.last_activity = time.monotonic()
            except BaseException:
                run.last_activity = time.monotonic()
                raise  # the client went away: the pipeline waits for a resume (or `reap_idle`)
            complete = t.total is not None and t.offset >= t.total
            if not stopped and (complete or t.total is None):
                await run.feed(_EOF)
            if stopped or complete or t.total is None:
                assert run.task is not None
                with contextlib.suppress(BaseException):
                    await asyncio.shield(run.task)
                self._finished(t, run.task)
                if t.phase == READY:
                    return _json(t.status(), 201)
                return _json(t.status(), 422 if t.error and t.error.get("reason") != "PushFailed" else 503)
        return web.Response(status=204, headers=self._offset_headers(t))
