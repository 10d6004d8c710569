"""Writing the JSON-dict form of an object as its message's bytes: one closure per field,
compiled once per message on first use (when every message is registered) and specialised
for what API objects are made of (strings, maps of strings, nested messages, lists of
them, times), so the answer to a protobuf create costs about what reading it did.

Keys the message does not define, None values and values of the wrong shape (which no Go
client could have sent) are left out; a key present in the dict is always written, in the
dict's order (protobuf readers accept fields in any order)."""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from controlplane.apiserver.protobuf import wire
from controlplane.apiserver.protobuf.scalars import SCALAR_ENCODERS, str_bytes
from controlplane.apiserver.protobuf.schema import REGISTRY, Field, Message

FieldEncoder = Callable[[Any], bytes]
_LEN = tuple(bytes((n,)) for n in range(0x80))  # one-byte lengths, the common case
_ENTRY_KEY = b"\x0a"  # a map entry's key: field 1, length-delimited
_ENTRY_STR = b"\x12"  # a map entry's string value: field 2, length-delimited
_TIMES_LIMIT = 4096
_SKIPPED = (TypeError, ValueError, AttributeError, binascii.Error)


def encode(msg: Message, obj: dict[str, Any]) -> bytes:
    """The dict as the message's bytes."""
    encoders = msg.encoders or _compile(msg)
    parts: list[bytes] = []
    append = parts.append
    get = encoders.get
    for name, value in obj.items():
        enc = get(name)
        if enc is None or value is None:
            continue
        try:
            append(enc(value))
        except _SKIPPED:
            continue
    return b"".join(parts)


def _compile(msg: Message) -> dict[str, FieldEncoder]:
    msg.encoders = {f.name: _field_encoder(f) for f in msg.fields}
    return msg.encoders


def _ld(tag: bytes, data: bytes) -> bytes:
    n = len(data)
    return tag + (_LEN[n] if n < 0x80 else wire.varint(n)) + data


def _value_encoder(f: Field, tag: bytes) -> FieldEncoder:
    if f.type == "msg":
        sub = REGISTRY[f.msg]

        def enc_msg(v: Any) -> bytes:
            if not isinstance(v, dict):
                raise TypeError("not an object")
            data = encode(sub, v)
            n = len(data)
            return tag + (_LEN[n] if n < 0x80 else wire.varint(n)) + data
        return enc_msg
    if f.type == "string":
        def enc_str(v: Any) -> bytes:
            data = v.encode() if type(v) is str else str_bytes(v)
            n = len(data)
            return tag + (_LEN[n] if n < 0x80 else wire.varint(n)) + data
        return enc_str
    scalar = SCALAR_ENCODERS[f.type]
    if f.type in ("time", "microtime"):
        return _cached_times(scalar, tag)
    return lambda v: scalar(tag, v)


def _cached_times(scalar: Callable[[bytes, Any], bytes], tag: bytes) -> FieldEncoder:
    """Times repeat (an object's creation, its managed fields, a whole batch written in the
    same second): each text is converted once. Bounded; cleared when full."""
    seen: dict[str, bytes] = {}

    def enc_time(v: Any) -> bytes:
        if type(v) is not str:
            return scalar(tag, v)
        found = seen.get(v)
        if found is None:
            if len(seen) >= _TIMES_LIMIT:
                seen.clear()
            found = seen[v] = scalar(tag, v)
        return found
    return enc_time


def _string_map(tag: bytes) -> FieldEncoder:
    """map<string, string> (labels, annotations, data): each entry written inline."""
    def enc_map(v: Any) -> bytes:
        if not isinstance(v, dict):
            return b""
        out: list[bytes] = []
        append = out.append
        for k, x in v.items():
            if x is None:
                continue
            kb = k.encode() if type(k) is str else str(k).encode()
            xb = x.encode() if type(x) is str else str_bytes(x)
            nk, nx = len(kb), len(xb)
            if nk < 0x80 and nx < 0x80 and nk + nx < 0x7C:  # the entry and its length fit one byte each
                append(tag + _LEN[nk + nx + 4] + _ENTRY_KEY + _LEN[nk] + kb + _ENTRY_STR + _LEN[nx] + xb)
            else:
                append(_ld(tag, _ld(_ENTRY_KEY, kb) + _ld(_ENTRY_STR, xb)))
        return b"".join(out)
    return enc_map


def _field_encoder(f: Field) -> FieldEncoder:
    if f.map:
        if f.type == "string":
            return _string_map(f.tag)
        value = _value_encoder(f, f.entry_tag)
        tag = f.tag

        def enc_map(v: Any) -> bytes:
            if not isinstance(v, dict):
                return b""
            return b"".join([_ld(tag, _ld(_ENTRY_KEY, str(k).encode()) + value(x)) for k, x in v.items()
                             if x is not None])
        return enc_map
    one = _value_encoder(f, f.tag)
    if f.repeated:
        def enc_list(v: Any) -> bytes:
            if not isinstance(v, list):
                return b""
            return b"".join([one(x) for x in v if x is not None])
        return enc_list
    return one
