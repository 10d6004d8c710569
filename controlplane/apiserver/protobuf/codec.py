"""Kubernetes' protobuf encoding of whole API objects: the kinds that have one, the
`k8s\\x00` + `runtime.Unknown` envelope, lists (`XList` = ListMeta + items), Status, and
watch frames (4-byte big-endian length, then a WatchEvent whose object is an enveloped
object: the stream itself is not enveloped, as in kube-apiserver's raw stream serializer).

Adding a built-in kind to protobuf is one entry in `KINDS` plus its message definitions."""

from __future__ import annotations

import struct
from typing import Any

from controlplane.apiserver.protobuf import apiextensions as _apiextensions  # noqa: F401  (registers messages)
from controlplane.apiserver.protobuf import core as _core  # noqa: F401  (registers the messages)
from controlplane.apiserver.protobuf import meta, wire
from controlplane.apiserver.protobuf import rbac as _rbac  # noqa: F401  (registers the messages)
from controlplane.apiserver.protobuf import reviews as _reviews  # noqa: F401  (registers the messages)
from controlplane.apiserver.protobuf.encoding import encode
from controlplane.apiserver.protobuf.schema import REGISTRY, Message, PathError, decode

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
STREAM_MEDIA_TYPE = MEDIA_TYPE + ";stream=watch"
MAGIC = b"k8s\x00"

# (group, version, kind) -> message name; the list kind is always `<kind>List`
KINDS: dict[tuple[str, str, str], str] = {
    ("", "v1", "Namespace"): "Namespace",
    ("", "v1", "Secret"): "Secret",
    ("", "v1", "ConfigMap"): "ConfigMap",
    ("", "v1", "ServiceAccount"): "ServiceAccount",
    ("", "v1", "Event"): "Event",
    ("", "v1", "Node"): "Node",
    ("", "v1", "Service"): "Service",
    ("", "v1", "Endpoints"): "Endpoints",
    ("coordination.k8s.io", "v1", "Lease"): "Lease",
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"): "CustomResourceDefinition",
    **{("rbac.authorization.k8s.io", "v1", k): k for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")},
}

_TAG1 = wire.key(1, wire.LENGTH)
_TAG2 = wire.key(2, wire.LENGTH)
_EMPTY_3_4 = b"\x1a\x00\x22\x00"  # Unknown.contentEncoding and contentType, written empty as Go does
_LENGTHS = tuple(bytes((n,)) for n in range(0x80))


class DecodeError(ValueError):
    """A protobuf body that cannot be read; the message names what is wrong and where."""


def message_for(group: str, version: str, kind: str) -> Message | None:
    name = KINDS.get((group, version, kind))
    return REGISTRY[name] if name else None


def review_message(kind: str) -> Message:
    """The message of a review kind (`protobuf/reviews.py`): created, never stored."""
    return REGISTRY[kind]


# -- envelope -----------------------------------------------------------------------------------
_HEADS: dict[tuple[str, str], bytes] = {}  # the magic and typeMeta of each (apiVersion, kind)


def _head(api_version: str, kind: str) -> bytes:
    found = _HEADS.get((api_version, kind))
    if found is None:
        type_meta = wire.length_delimited(_TAG1, api_version.encode()) + wire.length_delimited(_TAG2, kind.encode())
        found = MAGIC + wire.length_delimited(_TAG1, type_meta)
        if len(_HEADS) < 1024:
            _HEADS[(api_version, kind)] = found
    return found


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    n = len(raw)
    return b"".join((_head(api_version, kind), _TAG2, bytes((n,)) if n < 0x80 else wire.varint(n), raw, _EMPTY_3_4))


def envelope_parts(api_version: str, kind: str, parts: list[bytes]) -> bytes:
    """`envelope` of the concatenation of `parts`, joined once (a list of 10,000 objects is
    megabytes: copied once, not once per layer)."""
    n = sum(map(len, parts))
    return b"".join([_head(api_version, kind), _TAG2, wire.varint(n), *parts, _EMPTY_3_4])


def open_envelope(data: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw message) of an enveloped object."""
    if not data:
        raise DecodeError("empty body")
    if data[:4] != MAGIC:
        raise DecodeError(f"provided data does not appear to be a protobuf message, expected prefix {list(MAGIC)}")
    names = {1: "typeMeta", 2: "raw", 3: "contentEncoding", 4: "contentType"}
    parts: dict[int, bytes] = {}
    type_meta: dict[int, bytes] = {}
    inner = False
    try:
        for number, wt, value in wire.fields(data[4:]):
            if number in names:
                if wt != wire.LENGTH or not isinstance(value, bytes):
                    raise DecodeError(f"Unknown.{names[number]}: wire type {wt}, expected {wire.LENGTH}")
                parts[number] = value
        inner = True
        for number, wt, value in wire.fields(parts.get(1, b"")):
            if number in (1, 2):
                if wt != wire.LENGTH or not isinstance(value, bytes):
                    raise DecodeError(f"Unknown.typeMeta: wire type {wt}, expected {wire.LENGTH}")
                type_meta[number] = value
        api_version, kind = type_meta.get(1, b"").decode(), type_meta.get(2, b"").decode()
        encoding, content_type = parts.get(3, b"").decode(), parts.get(4, b"").decode()
    except wire.WireError as exc:
        where = "Unknown.typeMeta" if inner else f"Unknown.{names.get(exc.number, f'field {exc.number}')}"
        raise DecodeError(f"{where}: {exc}") from None
    except UnicodeDecodeError:
        raise DecodeError("Unknown: not valid UTF-8") from None
    if encoding:
        raise DecodeError(f"Unknown.contentEncoding: unsupported content encoding {encoding!r}")
    if content_type not in ("", MEDIA_TYPE):
        raise DecodeError(f"Unknown.contentType: unsupported content type {content_type!r}")
    return api_version, kind, parts.get(2, b"")


# -- objects, lists, Status ---------------------------------------------------------------------
def encode_object(msg: Message, obj: dict[str, Any]) -> bytes:
    """The object's message bytes, without the envelope (an item of a list, or `raw`)."""
    return encode(msg, obj)


def decode_object(msg: Message, raw: bytes) -> dict[str, Any]:
    try:
        return decode(msg, raw)
    except PathError as exc:
        raise DecodeError(str(exc)) from None


def encode_list(list_meta: dict[str, Any], items: list[bytes]) -> bytes:
    out = [wire.length_delimited(_TAG1, encode(meta.LIST_META, list_meta))]
    append = out.append
    for item in items:
        n = len(item)
        append(_TAG2)
        append(bytes((n,)) if n < 0x80 else wire.varint(n))
        append(item)
    return b"".join(out)


def decode_list(msg: Message, raw: bytes) -> dict[str, Any]:
    """A `<Kind>List` message as its JSON-dict form (without apiVersion/kind)."""
    result: dict[str, Any] = {"metadata": {}, "items": []}
    try:
        for number, wt, value in wire.fields(raw):
            if wt != wire.LENGTH or not isinstance(value, bytes):
                continue
            if number == 1:
                result["metadata"] = decode(meta.LIST_META, value, "metadata.")
            elif number == 2:
                result["items"].append(decode(msg, value, f"items[{len(result['items'])}]."))
    except wire.WireError as exc:
        raise DecodeError(str(exc)) from None
    return result


def encode_status(status: dict[str, Any]) -> bytes:
    return envelope("v1", "Status", encode(meta.STATUS, status))


def decode_delete_options(raw: bytes) -> dict[str, Any]:
    return decode_object(meta.DELETE_OPTIONS, raw)


# -- watch --------------------------------------------------------------------------------------
def watch_frame(event_type: str, enveloped_object: bytes) -> bytes:
    event = (wire.length_delimited(_TAG1, event_type.encode())
             + wire.length_delimited(_TAG2, wire.length_delimited(_TAG1, enveloped_object)))
    return struct.pack(">I", len(event)) + event


def read_frames(data: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """Complete frames in `data` as (type, enveloped object), and the incomplete rest."""
    events = []
    pos = 0
    while len(data) - pos >= 4:
        (n,) = struct.unpack_from(">I", data, pos)
        if len(data) - pos - 4 < n:
            break
        event = decode(meta.WATCH_EVENT, data[pos + 4:pos + 4 + n])
        events.append((str(event.get("type", "")), bytes((event.get("object") or {}).get("raw", b""))))
        pos += 4 + n
    return events, data[pos:]


# -- a cache of encoded objects -----------------------------------------------------------------
class EncodedCache:
    """Message bytes of stored object versions, keyed by (apiVersion, uid, resourceVersion):
    a version never changes, so lists and watches encode each one once (kube-apiserver's
    watch cache keeps serialized forms the same way). Each entry keeps the bytes and their
    prefix as a list item (tag and length), so a list is only lookups and appends. Bounded;
    the oldest entries go first."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._entries: dict[tuple[str, Any, Any], tuple[bytes, bytes]] = {}  # insertion-ordered: oldest first

    def _entry(self, msg: Message, api_version: str, obj: dict[str, Any]) -> tuple[bytes, bytes]:
        md = obj.get("metadata")
        uid, rv = (md.get("uid"), md.get("resourceVersion")) if isinstance(md, dict) else (None, None)
        if not isinstance(uid, str) or not isinstance(rv, str) or not uid or not rv:
            return _item(encode(msg, obj))
        k = (api_version, uid, rv)
        entries = self._entries
        found = entries.get(k)
        if found is None:
            found = entries[k] = _item(encode(msg, obj))
            if len(entries) > self.limit:
                del entries[next(iter(entries))]
        return found

    def encode(self, msg: Message, api_version: str, obj: dict[str, Any]) -> bytes:
        return self._entry(msg, api_version, obj)[0]

    def encode_many(self, msg: Message, api_version: str, objs: list[dict[str, Any]]) -> list[bytes]:
        """`encode` for every object of a list."""
        return [self._entry(msg, api_version, obj)[0] for obj in objs]

    def list_parts(self, msg: Message, list_meta: dict[str, Any], api_version: str,
                   objs: list[dict[str, Any]]) -> list[bytes]:
        """A `<Kind>List` message as parts to join (`envelope_parts`): the list meta, then each
        object's prefix and cached bytes, in one loop (stored objects always have a uid and a
        resourceVersion: anything else takes the general path)."""
        get = self._entries.get
        out = [wire.length_delimited(_TAG1, encode(meta.LIST_META, list_meta))]
        append = out.append
        for obj in objs:
            try:
                md = obj["metadata"]
                found = get((api_version, md["uid"], md["resourceVersion"]))
            except (KeyError, TypeError, IndexError):
                found = None
            if found is None:
                found = self._entry(msg, api_version, obj)
            append(found[1])
            append(found[0])
        return out


def _item(raw: bytes) -> tuple[bytes, bytes]:
    """The bytes, and their prefix as an item of a list (field 2, length-delimited)."""
    n = len(raw)
    return raw, _TAG2 + (_LENGTHS[n] if n < 0x80 else wire.varint(n))
