"""Protobuf around the resource handlers: `handle()` sits between routing and
`ResourceHandlers.handle`, so the handlers keep working in JSON dicts.

- A request body in `application/vnd.kubernetes.protobuf` is decoded to the object's
  dict (or DeleteOptions) before the handler reads it (`request[DECODED_BODY]`), marked
  `request[TYPED_BODY]` when the kind's schema checks nothing its decoding did not (`typed`,
  so the write skips that check as kube-apiserver does for typed bodies); a body that
  cannot be read is a 400 naming the problem, a protobuf body for a kind without a message
  (custom resources) a 415, and nothing is stored either way.
- The answer is negotiated from Accept (`negotiation.negotiate`); when protobuf wins, the
  handlers get `request[CODEC]`, with which they encode a stored object (create, get,
  update, patch), a list and watch frames straight from the stored dicts, through the
  encoded-object cache and without a JSON round trip; any other JSON answer (a Status,
  errors included) is re-encoded here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from controlplane.apiserver import errors, patch, tables
from controlplane.apiserver.bodies import in_worker_if, limits_of
from controlplane.apiserver.protobuf import codec, negotiation, typed
from controlplane.apiserver.protobuf.schema import Message
from controlplane.apiserver.resources import ResourceInfo
from controlplane.apiserver.routing import Target

DECODED_BODY = "protobuf.decoded_body"
TYPED_BODY = "protobuf.typed_body"  # True: the kind's schema can find nothing wrong with the decoded body
CODEC = "protobuf.codec"
Handler = Callable[[web.Request, ResourceInfo, Target], Awaitable[web.StreamResponse]]

CACHE = codec.EncodedCache()


class ProtobufAnswers:
    """What the handlers write when protobuf was negotiated: lists straight from the stored
    dicts (no JSON in between) and watch events as frames (see `codec.watch_frame`)."""

    content_type = codec.STREAM_MEDIA_TYPE

    def __init__(self, msg: Message, info: ResourceInfo, *, cacheable: bool = True) -> None:
        self.msg = msg
        self.info = info
        self.cacheable = cacheable  # a dry run's answer is no stored version: never cached

    def object_response(self, obj: dict[str, Any], status: int = 200) -> web.Response:
        """A stored object (the answer of a create, get, update or patch)."""
        info = self.info
        raw = CACHE.encode(self.msg, info.api_version, obj) if self.cacheable else codec.encode_object(self.msg, obj)
        return web.Response(body=codec.envelope(info.api_version, info.kind, raw), status=status,
                            content_type=negotiation.PROTOBUF)

    def event(self, event_type: str, obj: dict[str, Any]) -> bytes:
        raw = CACHE.encode(self.msg, self.info.api_version, obj)
        return codec.watch_frame(event_type, codec.envelope(self.info.api_version, self.info.kind, raw))

    def list_response(self, list_meta: dict[str, Any], items: list[dict[str, Any]]) -> web.Response:
        api_version = self.info.api_version
        parts = CACHE.list_parts(self.msg, list_meta, api_version, items)
        return web.Response(body=codec.envelope_parts(api_version, self.info.list_kind, parts),
                            content_type=negotiation.PROTOBUF)

    def frame(self, event_type: str, obj: dict[str, Any]) -> bytes:
        """A BOOKMARK (an object of the kind with only metadata) or an ERROR (a Status)."""
        if obj.get("kind") == "Status":
            return codec.watch_frame(event_type, codec.encode_status(obj))
        raw = codec.encode_object(self.msg, obj)
        return codec.watch_frame(event_type, codec.envelope(self.info.api_version, self.info.kind, raw))


def _base(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def status_response(exc: errors.ApiError) -> web.Response:
    return web.Response(body=codec.encode_status(exc.to_status()), status=exc.code,
                        content_type=negotiation.PROTOBUF)


async def _decode_request(request: web.Request, info: ResourceInfo, msg: Message | None) -> None:
    what = negotiation.PROTOBUF
    if msg is None:
        raise errors.unsupported_media_type(what, [negotiation.JSON, negotiation.YAML])
    raw = await request.read()
    if not raw:
        return
    try:
        api_version, kind, body = codec.open_envelope(raw)
        if request.method == "DELETE":
            request[DECODED_BODY] = codec.decode_delete_options(body)
            return
        if kind and kind != info.kind:  # let the handler refuse it as it refuses a JSON body of another kind
            request[DECODED_BODY] = {"apiVersion": api_version, "kind": kind}
            return
        # a large body decodes in the worker thread, as a large JSON body does (bodies.decode)
        obj = await in_worker_if(len(body) > limits_of(request).offload_bytes, lambda: codec.decode_object(msg, body))
    except codec.DecodeError as exc:
        raise errors.bad_request(f"the body of the request could not be decoded as {what}: {exc}") from None
    except RecursionError:  # messages nested in messages (a CRD's schema) thousands deep
        raise errors.bad_request(f"the body of the request is nested too deeply to be decoded as {what}") from None
    request[DECODED_BODY] = {"apiVersion": api_version or info.api_version, "kind": kind or info.kind, **obj}
    request[TYPED_BODY] = typed.schema_implied(info, msg)


def _encode_answer(info: ResourceInfo, msg: Message, body: bytes, *, cacheable: bool) -> bytes | None:
    doc = orjson.loads(body)
    if not isinstance(doc, dict):
        return None
    kind = doc.get("kind")
    if kind == "Status":
        return codec.encode_status(doc)
    if kind == info.list_kind:
        items = [CACHE.encode(msg, info.api_version, item) if cacheable else codec.encode_object(msg, item)
                 for item in doc.get("items") or []]
        return codec.envelope(info.api_version, info.list_kind, codec.encode_list(doc.get("metadata") or {}, items))
    if kind == info.kind:
        raw = CACHE.encode(msg, info.api_version, doc) if cacheable else codec.encode_object(msg, doc)
        return codec.envelope(info.api_version, info.kind, raw)
    return None


async def handle(request: web.Request, info: ResourceInfo, target: Target, inner: Handler) -> web.StreamResponse:
    msg = codec.message_for(info.group, info.version, info.kind)
    accept = request.headers.get("Accept", "")
    answer_pb = not tables.wants_table(accept) and negotiation.negotiate(
        accept, protobuf=msg is not None) == negotiation.PROTOBUF
    try:
        if _base(request.headers.get("Content-Type", "")) == negotiation.PROTOBUF:
            if request.method == "PATCH":  # a patch is never protobuf
                kinds = [patch.JSON_PATCH, patch.MERGE_PATCH] + ([patch.STRATEGIC_PATCH] if info.builtin else [])
                raise errors.unsupported_media_type(negotiation.PROTOBUF, kinds)
            await _decode_request(request, info, msg)
        if not answer_pb or msg is None:
            return await inner(request, info, target)
        cacheable = request.method != "DELETE" and request.query.get("dryRun", "") == ""  # a dry run in DeleteOptions too
        request[CODEC] = ProtobufAnswers(msg, info, cacheable=cacheable)
        response = await inner(request, info, target)
    except errors.ApiError as exc:
        if answer_pb:
            return status_response(exc)
        raise
    if not isinstance(response, web.Response) or response.headers.get("Content-Type") == negotiation.PROTOBUF:
        return response  # a stored object, a list or a watch, encoded by `ProtobufAnswers`
    watching = request.method == "GET" and not target.name and request.query.get("watch") in ("true", "1")
    if watching or response.content_type != negotiation.JSON:
        return response
    body = response.body
    if not isinstance(body, bytes):
        return response
    encoded = _encode_answer(info, msg, body, cacheable=cacheable)
    if encoded is not None:  # the same response, re-encoded: cheaper than a new one
        response.body = encoded
        response.content_type = negotiation.PROTOBUF
    return response
