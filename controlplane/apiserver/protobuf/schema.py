"""Message definitions as tables, and reading protobuf bytes clients send into the JSON-dict
form the server stores (writing is `encoding.py`).

A `Message` is a list of `Field`s (number, JSON name, type); messages refer to each other by
name through `REGISTRY`, so the definitions in `meta.py`, `core.py`, ... read like the
`generated.proto` files they come from. The conversion follows the Go types'
semantics: a scalar read from the wire is kept when it is not the zero value or when the Go
field is a pointer or serialized without `omitempty` (`keep=True`), so a protobuf object
decodes to the dict kube-apiserver would show as JSON. Special types: `time`/`microtime` (RFC 3339 string <-> Timestamp seconds/nanos),
`quantity` (string in a message), `intstr` (IntOrString), `bytes` (base64 string <-> raw
bytes), `fieldsv1` (a JSON object carried as raw bytes); their conversions live in `scalars.py`."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.apiserver.protobuf import wire
from controlplane.apiserver.protobuf.scalars import (
    CUSTOM_DECODERS,
    ZERO_TIME_SECONDS,
    format_time,
)

SCALARS_VARINT = frozenset({"int32", "int64", "bool"})


class PathError(wire.WireError):
    """A decoding problem already located at a field path."""


@dataclass
class Field:
    number: int
    name: str
    type: str  # string int32 int64 bool double bytes time microtime quantity intstr fieldsv1 json rawbytes msg
    #            or a type registered with `register_type` (the unions of JSONSchemaProps)
    msg: str = ""  # the message's name, for type "msg"
    repeated: bool = False
    map: bool = False  # map<string, type>
    keep: bool = False  # keep zero values read from the wire (Go pointer or no omitempty)
    tag: bytes = b""
    entry_tag: bytes = b""  # the tag of a map entry's value (field 2)
    plain_string: bool = False  # a single string: decoded inline

    def __post_init__(self) -> None:
        value_wt = wire.VARINT if self.type in SCALARS_VARINT else wire.FIXED64 if self.type == "double" else wire.LENGTH
        self.tag = wire.key(self.number, wire.LENGTH if self.map else value_wt)
        self.entry_tag = wire.key(2, value_wt)
        self.plain_string = self.type == "string" and not self.map and not self.repeated


@dataclass
class Message:
    name: str
    fields: list[Field]
    by_name: dict[str, Field] = field(default_factory=dict)
    by_number: dict[int, Field] = field(default_factory=dict)
    encoders: dict[str, Callable[[Any], bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {f.name: f for f in self.fields}
        self.by_number = {f.number: f for f in self.fields}


REGISTRY: dict[str, Message] = {}


def message(name: str, *specs: Field) -> Message:
    m = Message(name, list(specs))
    REGISTRY[name] = m
    return m


# -- field constructors, so tables stay one line per field -------------------------------------
def s(n: int, name: str, *, keep: bool = False) -> Field:
    return Field(n, name, "string", keep=keep)


def i32(n: int, name: str, *, keep: bool = False) -> Field:
    return Field(n, name, "int32", keep=keep)


def i64(n: int, name: str, *, keep: bool = False) -> Field:
    return Field(n, name, "int64", keep=keep)


def b(n: int, name: str, *, keep: bool = False) -> Field:
    return Field(n, name, "bool", keep=keep)


def t(n: int, name: str, kind: str = "time") -> Field:
    return Field(n, name, kind)


def m(n: int, name: str, msg: str) -> Field:
    return Field(n, name, "msg", msg=msg)


def rep(n: int, name: str, type_or_msg: str) -> Field:
    if type_or_msg[0].isupper():
        return Field(n, name, "msg", msg=type_or_msg, repeated=True)
    return Field(n, name, type_or_msg, repeated=True)


def mapof(n: int, name: str, value: str) -> Field:
    """map<string, value>; a value type starting with a capital letter is a message."""
    if value[0].isupper():
        return Field(n, name, "msg", msg=value, map=True)
    return Field(n, name, value, map=True)


def f(n: int, name: str, type_: str, *, keep: bool = False, repeated: bool = False) -> Field:
    """Any other field: `double`, `json`, or a registered type."""
    return Field(n, name, type_, keep=keep, repeated=repeated)


# -- decoding ----------------------------------------------------------------------------------
def decode(msg: Message, data: bytes, path: str = "") -> dict[str, Any]:
    """The message's bytes as a dict; unknown fields are skipped; malformed input raises
    `PathError` naming the field path."""
    obj: dict[str, Any] = {}
    by_number = msg.by_number
    try:
        for number, wt, value in wire.fields(data):
            f = by_number.get(number)
            if f is None:
                continue
            _decode_field(f, wt, value, obj, path)
    except PathError:
        raise
    except wire.WireError as exc:
        f = by_number.get(exc.number)
        where = path + f.name if f else (f"{path}field {exc.number}" if exc.number else path.rstrip(".") or msg.name)
        raise PathError(f"{where}: {exc}") from None
    return obj


def _decode_value(f: Field, wt: int, value: int | bytes, where: str) -> Any:
    typ = f.type
    if typ in SCALARS_VARINT:
        if wt != wire.VARINT or not isinstance(value, int):
            raise PathError(f"{where}: wire type {wt}, expected {wire.VARINT}")
        if typ == "bool":
            return bool(value)
        return wire.signed(value, 32 if typ == "int32" else 64)
    if typ == "double":
        if wt != wire.FIXED64 or not isinstance(value, int):
            raise PathError(f"{where}: wire type {wt}, expected {wire.FIXED64}")
        number = struct.unpack("<d", value.to_bytes(8, "little"))[0]
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if wt != wire.LENGTH or not isinstance(value, bytes):
        raise PathError(f"{where}: wire type {wt}, expected {wire.LENGTH}")
    if typ == "string":
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise PathError(f"{where}: not valid UTF-8") from None
    if typ == "rawbytes":
        return bytes(value)
    if typ == "bytes":
        return base64.b64encode(value).decode()
    if typ == "msg":
        return decode(REGISTRY[f.msg], value, where + ".")
    custom = CUSTOM_DECODERS.get(typ)
    if custom is not None:
        return custom(value, where)
    return _decode_special(typ, value, where)


def _decode_special(typ: str, value: bytes, where: str) -> Any:
    parts: dict[int, int | bytes] = {}
    try:
        for number, _wt, v in wire.fields(value):
            parts[number] = v
    except wire.WireError as exc:
        raise PathError(f"{where}: {exc}") from None
    if typ in ("time", "microtime"):
        secs, nanos = parts.get(1, 0), parts.get(2, 0)
        if not isinstance(secs, int) or not isinstance(nanos, int):
            raise PathError(f"{where}: seconds and nanos must be varints")
        secs, nanos = wire.signed(secs), wire.signed(nanos, 32)
        if not value or secs == ZERO_TIME_SECONDS and not nanos:
            return None
        if not 0 <= nanos < 1_000_000_000:
            raise PathError(f"{where}: nanos out of range")
        try:
            return format_time(secs, nanos, typ == "microtime")
        except OverflowError:
            raise PathError(f"{where}: time out of range") from None
    raw = parts.get(1 if typ != "intstr" else 3, b"")
    if typ == "intstr":
        kind = parts.get(1, 0)
        if kind == 0:
            iv = parts.get(2, 0)
            return wire.signed(iv, 32) if isinstance(iv, int) else 0
    if not isinstance(raw, bytes):
        raise PathError(f"{where}: wire type 0, expected {wire.LENGTH}")
    if typ in ("fieldsv1", "json"):
        try:
            return orjson.loads(raw) if raw else ({} if typ == "fieldsv1" else None)
        except orjson.JSONDecodeError:
            raise PathError(f"{where}: not valid JSON") from None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise PathError(f"{where}: not valid UTF-8") from None


def _decode_field(f: Field, wt: int, value: int | bytes, obj: dict[str, Any], path: str) -> None:
    name = f.name
    if f.plain_string and wt == wire.LENGTH and isinstance(value, bytes):  # the common case, inline
        try:
            text = value.decode()
        except UnicodeDecodeError:
            raise PathError(f"{path}{name}: not valid UTF-8") from None
        if text or f.keep:
            obj[name] = text
        else:
            obj.pop(name, None)
        return
    if f.map:
        if wt != wire.LENGTH or not isinstance(value, bytes):
            raise PathError(f"{path}{name}: wire type {wt}, expected {wire.LENGTH}")
        if f.type == "string":
            pair = _short_entry(value)
            if pair is not None:  # the common case, inline
                try:
                    obj.setdefault(name, {})[pair[0].decode()] = pair[1].decode()
                    return
                except UnicodeDecodeError:
                    pass  # the general path below names the problem
        k: str = ""
        v: Any = None
        try:
            entries = list(wire.fields(value))
        except wire.WireError as exc:
            raise PathError(f"{path}{name}: {exc}") from None
        for number, ewt, ev in entries:
            if number == 1:
                if not isinstance(ev, bytes):
                    raise PathError(f"{path}{name}: map key must be a string")
                try:
                    k = ev.decode()
                except UnicodeDecodeError:
                    raise PathError(f"{path}{name}: map key is not valid UTF-8") from None
            elif number == 2:
                v = _decode_value(f, ewt, ev, f"{path}{name}[{k}]")
        if v is None:
            v = _zero(f)
        obj.setdefault(name, {})[k] = v
        return
    where = path + name
    if f.repeated:
        item = _decode_value(f, wt, value, f"{where}[{len(obj.get(name) or [])}]")
        obj.setdefault(name, []).append(item)
        return
    result = _decode_value(f, wt, value, where)
    if result is None:
        obj.pop(name, None)
    elif f.keep or f.type == "msg" or result:
        obj[name] = result
    else:
        obj.pop(name, None)


def _short_entry(entry: bytes) -> tuple[bytes, bytes] | None:
    """(key, value) of a map entry written as Go writes short ones (key 1, then value 2, each
    under 128 bytes); None for anything else, which the general path reads."""
    n = len(entry)
    if n < 2 or entry[0] != 0x0A or entry[1] >= 0x80:
        return None
    p = 2 + entry[1]
    if p == n:
        return entry[2:p], b""
    if p + 2 > n or entry[p] != 0x12 or entry[p + 1] >= 0x80 or p + 2 + entry[p + 1] != n:
        return None
    return entry[2:p], entry[p + 2:]


def _zero(f: Field) -> Any:
    if f.type in ("int32", "int64"):
        return 0
    if f.type == "bool":
        return False
    if f.type == "msg":
        return {}
    return ""
