"""Conversions of the field types that are not plain messages: RFC 3339 times <->
Timestamp (seconds, nanos), quantities, IntOrString, base64 <-> bytes, JSON carried as
bytes, doubles; and the registry of field types other modules add (`register_type`)."""

from __future__ import annotations

import base64
import datetime as dt
import struct
from collections.abc import Callable
from typing import Any

import orjson

from controlplane.apiserver.protobuf import wire

Encoder = Callable[[bytes, Any], bytes]
Decoder = Callable[[bytes, str], Any]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ZERO_TIME_SECONDS = -62135596800  # Go's zero time.Time (0001-01-01): encoded as an empty Timestamp


def parse_time(value: str) -> tuple[int, int]:
    """RFC 3339 (any offset, optional fraction) -> (seconds, nanos) since the epoch."""
    text = value.strip()
    frac = 0
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        digits = text[dot + 1:end]
        frac = int((digits + "000000000")[:9]) if digits else 0
        text = text[:dot] + text[end:]
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - EPOCH
    return delta.days * 86400 + delta.seconds, frac


def format_time(seconds: int, nanos: int, micro: bool) -> str:
    when = EPOCH + dt.timedelta(seconds=seconds)
    base = when.strftime("%Y-%m-%dT%H:%M:%S")
    if micro:
        return f"{base}.{nanos // 1000:06d}Z"
    if nanos:
        return f"{base}.{f'{nanos:09d}'.rstrip('0')}Z"
    return base + "Z"


def _timestamp(value: Any) -> bytes:
    secs, nanos = parse_time(str(value))
    out = b""
    if secs:
        out += b"\x08" + wire.varint(secs)
    if nanos:
        out += b"\x10" + wire.varint(nanos)
    return out


def str_bytes(v: Any) -> bytes:
    return (v if isinstance(v, str) else orjson.dumps(v).decode().strip('"')).encode()


def _enc_string(tag: bytes, v: Any) -> bytes:
    return wire.length_delimited(tag, str_bytes(v))


def _enc_int(tag: bytes, v: Any) -> bytes:
    return tag + wire.varint(int(v))


def _enc_bool(tag: bytes, v: Any) -> bytes:
    return tag + (b"\x01" if v else b"\x00")


def _enc_bytes(tag: bytes, v: Any) -> bytes:
    return wire.length_delimited(tag, base64.b64decode(v) if isinstance(v, str) else bytes(v))


def _enc_time(tag: bytes, v: Any) -> bytes:
    return wire.length_delimited(tag, _timestamp(v))


def _enc_quantity(tag: bytes, v: Any) -> bytes:
    return wire.length_delimited(tag, wire.length_delimited(b"\x0a", str_bytes(v)))


def _enc_intstr(tag: bytes, v: Any) -> bytes:
    if isinstance(v, int) and not isinstance(v, bool):
        inner = b"\x08\x00\x10" + wire.varint(v)
    else:
        inner = b"\x08\x01" + wire.length_delimited(b"\x1a", str_bytes(v))
    return wire.length_delimited(tag, inner)


def _enc_fieldsv1(tag: bytes, v: Any) -> bytes:
    return wire.length_delimited(tag, wire.length_delimited(b"\x0a", orjson.dumps(v)))


def _enc_double(tag: bytes, v: Any) -> bytes:
    return tag + struct.pack("<d", float(v))


SCALAR_ENCODERS: dict[str, Encoder] = {
    "string": _enc_string, "int32": _enc_int, "int64": _enc_int, "bool": _enc_bool, "bytes": _enc_bytes,
    "time": _enc_time, "microtime": _enc_time, "quantity": _enc_quantity, "intstr": _enc_intstr,
    "fieldsv1": _enc_fieldsv1, "json": _enc_fieldsv1, "double": _enc_double,
    "rawbytes": lambda tag, v: wire.length_delimited(tag, bytes(v)),
}
CUSTOM_DECODERS: dict[str, Decoder] = {}


def register_type(name: str, encoder: Encoder, decoder: Decoder) -> None:
    """A field type of its own (a message with a conversion of its own), written `f(n, name, type)`."""
    SCALAR_ENCODERS[name] = encoder
    CUSTOM_DECODERS[name] = decoder
