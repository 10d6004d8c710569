"""Whether a kind's schema asks anything of an object that decoding its protobuf message has
not already made true.

kube-apiserver runs no schema over built-in kinds: decoding into the Go types is their type
check. Here a JSON body is type-checked against the kind's schema; a protobuf body was read
field by field into its message's types (`schema.decode`), so when the schema says nothing
but what type each field has (`type`, `properties`, `items`, `additionalProperties`,
`format`, `description`) and says the same types as the message, checking it again finds
nothing and costs as much as the rest of the create. Anything else (required fields,
enums, patterns, CEL rules, list types, int-or-string, nullable, preserved unknown fields,
a field whose message type and schema type differ) keeps the schema check.

Decided once per kind (and again when its schema object changes)."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.protobuf.schema import REGISTRY, Field, Message
from controlplane.apiserver.resources import ResourceInfo

_TYPES_ONLY = frozenset({"type", "properties", "additionalProperties", "items", "format", "description"})
_SHAPES = frozenset({"properties", "additionalProperties", "items"})
_JSON_TYPE = {"string": "string", "bytes": "string", "time": "string", "microtime": "string", "quantity": "string",
              "int32": "integer", "int64": "integer", "bool": "boolean", "double": "number"}
_TOP_SKIPPED = frozenset({"apiVersion", "kind", "metadata"})  # set from the envelope; ObjectMeta has its own checks
_decided: dict[int, tuple[object, bool]] = {}


def schema_implied(info: ResourceInfo, msg: Message) -> bool:
    """True when the kind's schema can find nothing wrong with an object decoded from `msg`."""
    schema = info.schema
    if schema is None:
        return True
    found = _decided.get(id(info))
    if found is None or found[0] is not schema:
        found = _decided[id(info)] = (schema, _object(msg, schema.schema, top=True))
    return found[1]


def _object(msg: Message, s: Any, *, top: bool = False) -> bool:
    if not isinstance(s, dict) or set(s) - _TYPES_ONLY or s.get("type") != "object" \
            or "additionalProperties" in s or "items" in s:
        return False
    props = s.get("properties") or {}
    if not isinstance(props, dict):
        return False
    for name, sub in props.items():
        if top and name in _TOP_SKIPPED:
            continue
        f = msg.by_name.get(name)
        if f is not None and not _field(f, sub):  # a field the message lacks is never decoded
            return False
    return True


def _field(f: Field, s: Any) -> bool:
    if not isinstance(s, dict) or set(s) - _TYPES_ONLY:
        return False
    if f.map:
        return s.get("type") == "object" and "properties" not in s and "items" not in s \
            and _value(f, s.get("additionalProperties"))
    if f.repeated:
        return s.get("type") == "array" and not s.keys() & {"properties", "additionalProperties"} \
            and _value(f, s.get("items"))
    return _value(f, s)


def _value(f: Field, s: Any) -> bool:
    """One value of the field (an entry of a map, an item of a list) against its schema."""
    if not isinstance(s, dict) or set(s) - _TYPES_ONLY:
        return False
    if f.type == "msg":
        sub = REGISTRY.get(f.msg)
        return sub is not None and _object(sub, s)
    want = _JSON_TYPE.get(f.type)
    return want is not None and s.get("type") == want and not s.keys() & _SHAPES
