"""HTTP handlers of the resource API: decode the request, call `ApiService`, encode the
answer (JSON object, JSON list built from stored bytes without re-encoding, or a Table
for kubectl), and stream watches."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from controlplane.apiserver import bodies, conversion, errors, read_options, scale, tables
from controlplane.apiserver.apply import requests as apply_requests
from controlplane.apiserver.datastore import Stored
from controlplane.apiserver.protobuf.http import CODEC, DECODED_BODY
from controlplane.apiserver.resources import ResourceInfo
from controlplane.apiserver.routing import Target
from controlplane.apiserver.selectors import FieldSelector, LabelSelector
from controlplane.apiserver.service import ApiService, DeleteOptions, object_key
from controlplane.apiserver.watch import WatchHub

JSON = "application/json"
BOOKMARK_INTERVAL = 10.0
DEFAULT_WATCH_TIMEOUT = 1800


TABLE_ROWS_ON_LOOP = 200
"""A Table of more rows is computed in the worker thread: a row's printer columns cost tens of
microseconds (5,000 VirtualMachines took 0.15 s), which must not stall the event loop."""


def json_response(body: Any, status: int = 200) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=data, status=status, content_type=JSON)


def error_response(exc: errors.ApiError) -> web.Response:
    response = json_response(exc.to_status(), exc.code)
    if "retryAfterSeconds" in exc.details:
        response.headers["Retry-After"] = str(exc.details["retryAfterSeconds"])
    return response


async def read_body(request: web.Request) -> Any:
    if DECODED_BODY in request:  # a protobuf body, decoded by protobuf.http
        obj = request[DECODED_BODY]
    else:
        limits = bodies.limits_of(request)
        raw = await bodies.read_limited(request, limits)
        if not raw:
            return None
        obj = await bodies.decode(raw, request.content_type, limits)
    bodies.keep_for_audit(request, obj)
    return obj


def present(info: ResourceInfo, stored: Stored) -> bytes:
    """The object's bytes as the requested version shows them."""
    if info.is_storage_version:
        return stored.raw
    return orjson.dumps(conversion.view(info, stored.copy()))


def _obj_view(info: ResourceInfo, stored: Stored) -> dict[str, Any]:
    if info.is_storage_version:
        return stored.obj
    return conversion.view(info, stored.copy())


def _answer(request: web.Request, info: ResourceInfo, stored: Stored, status: int = 200) -> web.Response:
    """The object in the negotiated format: protobuf encoded straight from the stored dict
    (`protobuf.http.ProtobufAnswers`), else its stored JSON bytes."""
    codec = request.get(CODEC)
    if codec is not None:
        return codec.object_response(_obj_view(info, stored), status)  # type: ignore[no-any-return]
    return json_response(present(info, stored), status)


def _int_param(request: web.Request, name: str) -> int:
    value = request.query.get(name, "")
    if not value:
        return 0
    try:
        return int(value)
    except ValueError as exc:
        raise errors.bad_request(f"invalid value for {name}: {value!r}") from exc


class ResourceHandlers:
    def __init__(self, service: ApiService, hub: WatchHub) -> None:
        self.service = service
        self.hub = hub
        self.scale = scale.ScaleHandler(service)

    def _selectors(self, info: ResourceInfo, request: web.Request) -> tuple[LabelSelector | None, FieldSelector | None]:
        label = request.query.get("labelSelector", "")
        field = request.query.get("fieldSelector", "")
        return (LabelSelector(label) if label else None,
                FieldSelector(field, info.field_labels) if field else None)

    async def handle(self, request: web.Request, info: ResourceInfo, target: Target) -> web.StreamResponse:
        method = request.method
        dry_run = request.query.get("dryRun") == "All"
        accept = request.headers.get("Accept", "")
        if target.subresource == "scale" and scale.spec_of(info) is not None:
            return await self.scale.handle(request, info, target.namespace, target.name)
        if target.subresource and target.subresource not in ("status",) and not (
                target.subresource == "finalize" and info.kind == "Namespace"):
            raise errors.not_found(f"{info.plural}/{target.subresource}", info.group, target.name)
        if target.subresource == "status" and not info.has_status:
            raise errors.not_found(f"{info.plural}/status", info.group, target.name)
        sub = "" if target.subresource == "finalize" else target.subresource
        ns = target.namespace
        if not target.name:
            if method == "GET":
                if request.query.get("watch") in ("true", "1"):
                    return await self.watch(request, info, ns)
                return await self.list(request, info, ns, accept)
            if method == "POST":
                opts = apply_requests.write_options(request)
                stored = await self.service.create(info, ns, await apply_requests.read_body(request, opts),
                                                   dry_run=dry_run, options=opts)
                return apply_requests.add_warnings(_answer(request, info, stored, 201), opts)
            if method == "DELETE":
                return await self.delete_collection(request, info, ns)
            raise errors.method_not_allowed(method, info.plural)
        if method == "GET":
            stored = self._get(request, info, ns, target.name)
            if tables.wants_table(accept):
                return json_response(tables.table(info, [_obj_view(info, stored)], version=tables.table_version(accept),
                                                  include=request.query.get("includeObject", "Metadata"),
                                                  list_meta={"resourceVersion": str(stored.rv)}))
            return _answer(request, info, stored)
        if method == "PUT":
            opts = apply_requests.write_options(request)
            stored = await self.service.update(info, ns, target.name, await apply_requests.read_body(request, opts),
                                               subresource=sub, dry_run=dry_run, options=opts)
            return apply_requests.add_warnings(_answer(request, info, stored), opts)
        if method == "PATCH":
            opts = apply_requests.write_options(request)
            stored = await self.service.patch(info, ns, target.name, request.content_type,
                                              await apply_requests.read_body(request, opts), subresource=sub,
                                              dry_run=dry_run, options=opts)
            return apply_requests.add_warnings(_answer(request, info, stored, 201 if opts.created else 200), opts)
        if method == "DELETE":
            options = await self._delete_options(request)
            stored, removed = await self.service.delete(info, ns, target.name, options)
            if removed:
                meta = stored.obj.get("metadata") or {}
                return json_response(errors.success_status(target.name, info.group, info.plural, meta.get("uid", "")))
            return _answer(request, info, stored)
        raise errors.method_not_allowed(method, info.plural)

    def _get(self, request: web.Request, info: ResourceInfo, ns: str, name: str) -> Stored:
        version = read_options.read_version(request.query, self.service.store)
        if not version.exact:
            return self.service.get(info, ns, name)
        assert version.rv is not None
        found = read_options.object_at(self.service.store, info.storage_resource, object_key(info, ns, name),
                                       version.rv)
        if found is None:
            raise errors.not_found(info.plural, info.group, name)
        return found

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        body = await read_body(request) if request.can_read_body or DECODED_BODY in request else None
        body = body if isinstance(body, dict) else {}
        pre = body.get("preconditions") or {}
        policy = body.get("propagationPolicy") or request.query.get("propagationPolicy") or ""
        orphan = body.get("orphanDependents")
        if orphan is None and "orphanDependents" in request.query:
            orphan = request.query["orphanDependents"] == "true"
        if not policy:
            policy = "Orphan" if orphan else "Background"
        if policy not in ("Orphan", "Background", "Foreground"):
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                                     '"Foreground", "Background", "Orphan"')
        dry = body.get("dryRun") == ["All"] or request.query.get("dryRun") == "All"
        return DeleteOptions(policy, pre.get("uid"), pre.get("resourceVersion"), dry)

    async def list(self, request: web.Request, info: ResourceInfo, ns: str, accept: str) -> web.Response:
        labels, fields = self._selectors(info, request)
        at = read_options.list_snapshot(request.query, self.service.store, info.storage_resource,
                                        ns if info.namespaced and ns else None)
        result = self.service.list(info, ns, labels=labels, fields=fields, limit=read_options.parse_limit(request.query),
                                   continue_token=request.query.get("continue", ""), at=at)
        meta: dict[str, Any] = {"resourceVersion": str(result.rv)}
        if result.continue_token:
            meta["continue"] = result.continue_token
            meta["remainingItemCount"] = result.remaining
        if tables.wants_table(accept):
            version, include = tables.table_version(accept), request.query.get("includeObject", "Metadata")

            def rows() -> bytes:
                objs = [_obj_view(info, s) for s in result.items]
                return orjson.dumps(tables.table(info, objs, version=version, include=include, list_meta=meta))

            return json_response(await bodies.in_worker_if(len(result.items) > TABLE_ROWS_ON_LOOP, rows))
        if CODEC in request:  # protobuf, encoded from the stored dicts
            objs = [s.obj for s in result.items] if info.is_storage_version else [_obj_view(info, s) for s in result.items]
            return request[CODEC].list_response(meta, objs)  # type: ignore[no-any-return]
        head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(present(info, s) for s in result.items) + b"]}"
        return json_response(body)

    async def delete_collection(self, request: web.Request, info: ResourceInfo, ns: str) -> web.Response:
        labels, fields = self._selectors(info, request)
        options = await self._delete_options(request)
        result = self.service.list(info, ns, labels=labels, fields=fields)
        deleted = []
        for stored in result.items:
            meta = stored.obj["metadata"]
            try:
                out, _ = await self.service.delete(info, meta.get("namespace", ""), meta["name"], options)
                deleted.append(present(info, out))
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version,
                             "metadata": {"resourceVersion": str(self.service.store.rv)}})
        return json_response(head[:-1] + b',"items":[' + b",".join(deleted) + b"]}")

    async def watch(self, request: web.Request, info: ResourceInfo, ns: str) -> web.StreamResponse:
        labels, fields = self._selectors(info, request)
        version = read_options.read_version(request.query, self.service.store, watch=True)
        initial_events = request.query.get("sendInitialEvents") == "true"
        since = None if initial_events else version.rv
        timeout = _int_param(request, "timeoutSeconds") or DEFAULT_WATCH_TIMEOUT
        bookmarks = request.query.get("allowWatchBookmarks") in ("true", "1")
        accept = request.headers.get("Accept", "")
        as_table = tables.wants_table(accept)
        table_version = tables.table_version(accept)
        include = request.query.get("includeObject", "Metadata")
        codec = request.get(CODEC)  # protobuf frames instead of JSON lines
        response = web.StreamResponse(headers={"Content-Type": codec.content_type if codec else JSON,
                                               "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        try:
            watcher, initial = self.hub.open(info.storage_resource, namespace=ns if info.namespaced and ns else None,
                                             labels=labels, fields=fields, since=since)
        except errors.ApiError as exc:
            if exc.code != 410:
                raise
            await response.prepare(request)
            await response.write(codec.frame("ERROR", exc.to_status()) if codec
                                 else orjson.dumps({"type": "ERROR", "object": exc.to_status()}) + b"\n")
            return response
        initial_rv = self.service.store.rv
        first = [True]

        def encode(typ: str, stored: Stored) -> bytes:
            if as_table:
                obj = tables.table(info, [_obj_view(info, stored)], version=table_version, include=include,
                                   list_meta={"resourceVersion": str(stored.rv)}, headers=first[0])
                first[0] = False
                return orjson.dumps({"type": typ, "object": obj}) + b"\n"
            if codec:
                return bytes(codec.event(typ, _obj_view(info, stored)))
            return b'{"type":"' + typ.encode() + b'","object":' + present(info, stored) + b"}\n"

        try:
            await response.prepare(request)
            if initial:
                await response.write(b"".join(encode(t, s) for t, s in initial))
            if initial_events:
                end = read_options.initial_events_end(info.kind, info.api_version, initial_rv)
                await response.write(orjson.dumps(end) + b"\n")
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), min(left, BOOKMARK_INTERVAL))
                except TimeoutError:
                    if bookmarks and watcher.queue.empty():
                        mark = {"kind": info.kind, "apiVersion": info.api_version,
                                "metadata": {"resourceVersion": str(self.service.store.rv)}}
                        await response.write(codec.frame("BOOKMARK", mark) if codec
                                             else orjson.dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
                    continue
                if item is None:  # the watcher fell behind; the client re-watches
                    break
                chunk = [encode(*item)]
                behind = False
                while not watcher.queue.empty() and len(chunk) < 512:
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        behind = True
                        break
                    chunk.append(encode(*nxt))
                await response.write(b"".join(chunk))
                if behind:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.close(watcher)
        return response
