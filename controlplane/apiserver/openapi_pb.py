"""Protobuf encoding of an OpenAPI v2 document, in gnostic's `openapi.v2.Document` message.

kubectl (1.20 and later) fetches `/openapi/v2` with
`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and parses the
protobuf form for `kubectl explain`, client-side validation and (1.20) its dry-run
detection, which reads the PATCH operations' parameters. Encoded: Document, Info, Paths,
PathItem, Operation, Parameter (body, query, path), Responses, Definitions, NamedSchema,
Schema, Properties, ItemsItem, TypeItem, AdditionalPropertiesItem, NamedAny and Any (values
carried as YAML text, as gnostic does). Field numbers follow gnostic's
published OpenAPIv2.proto.
"""

from __future__ import annotations

import struct
from typing import Any

import yaml

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _bytes(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _str(field: int, value: str) -> bytes:
    return _bytes(field, value.encode()) if value else b""


def _int(field: int, value: int | None) -> bytes:
    return _key(field, 0) + _varint(int(value)) if value else b""


def _bool(field: int, value: bool | None) -> bytes:
    return _key(field, 0) + b"\x01" if value else b""


def _double(field: int, value: float | None) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(value)) if value is not None else b""


def _any(value: Any) -> bytes:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    return _str(2, text)


def _named_any(name: str, value: Any) -> bytes:
    return _str(1, name) + _bytes(2, _any(value))


def schema(s: dict[str, Any]) -> bytes:
    out = bytearray()
    out += _str(1, s.get("$ref", ""))
    out += _str(2, s.get("format", ""))
    out += _str(3, s.get("title", ""))
    out += _str(4, s.get("description", ""))
    if "default" in s:
        out += _bytes(5, _any(s["default"]))
    if s.get("multipleOf") is not None:
        out += _double(6, s["multipleOf"])
    if s.get("maximum") is not None:
        out += _double(7, s["maximum"])
    out += _bool(8, s.get("exclusiveMaximum"))
    if s.get("minimum") is not None:
        out += _double(9, s["minimum"])
    out += _bool(10, s.get("exclusiveMinimum"))
    out += _int(11, s.get("maxLength"))
    out += _int(12, s.get("minLength"))
    out += _str(13, s.get("pattern", ""))
    out += _int(14, s.get("maxItems"))
    out += _int(15, s.get("minItems"))
    out += _bool(16, s.get("uniqueItems"))
    out += _int(17, s.get("maxProperties"))
    out += _int(18, s.get("minProperties"))
    for r in s.get("required", []):
        out += _str(19, r)
    for e in s.get("enum", []):
        out += _bytes(20, _any(e))
    addl = s.get("additionalProperties")
    if isinstance(addl, dict):
        out += _bytes(21, _bytes(1, schema(addl)))
    elif isinstance(addl, bool):
        out += _bytes(21, _key(2, 0) + (b"\x01" if addl else b"\x00"))
    if s.get("type"):
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out += _bytes(22, b"".join(_str(1, t) for t in types))
    if isinstance(s.get("items"), dict):
        out += _bytes(23, _bytes(1, schema(s["items"])))
    for sub in s.get("allOf", []):
        out += _bytes(24, schema(sub))
    if s.get("properties"):
        props = b"".join(_bytes(1, _str(1, k) + _bytes(2, schema(v))) for k, v in s["properties"].items())
        out += _bytes(25, props)
    for k, v in s.items():
        if k.startswith("x-"):
            out += _bytes(31, _named_any(k, v))
    return bytes(out)


def _parameter(p: dict[str, Any]) -> bytes:
    """A ParametersItem holding a Parameter: a BodyParameter, or a query/path NonBodyParameter."""
    if p.get("in") == "body":
        body = (_str(1, p.get("description", "")) + _str(2, p["name"]) + _str(3, "body")
                + _bool(4, p.get("required")) + _bytes(5, schema(p.get("schema") or {})))
        return _bytes(1, _bytes(1, body))
    common = _bool(1, p.get("required")) + _str(2, p["in"]) + _str(3, p.get("description", "")) + _str(4, p["name"])
    if p["in"] == "path":  # PathParameterSubSchema: type 5, unique_items 19
        sub = _bytes(4, common + _str(5, p.get("type", "")) + _bool(19, p.get("uniqueItems")))
    else:  # QueryParameterSubSchema: type 6, unique_items 20
        sub = _bytes(3, common + _str(6, p.get("type", "")) + _bool(20, p.get("uniqueItems")))
    return _bytes(1, _bytes(2, sub))


def _operation(op: dict[str, Any]) -> bytes:
    out = bytearray()
    for tag in op.get("tags", []):
        out += _str(1, tag)
    out += _str(3, op.get("description", "")) + _str(5, op.get("operationId", ""))
    for t in op.get("produces", []):
        out += _str(6, t)
    for t in op.get("consumes", []):
        out += _str(7, t)
    for p in op.get("parameters", []):
        out += _bytes(8, _parameter(p))
    codes = bytearray()
    for code, resp in op.get("responses", {}).items():
        response = _str(1, resp.get("description", ""))
        if "schema" in resp:
            response += _bytes(2, _bytes(1, schema(resp["schema"])))
        codes += _bytes(1, _str(1, code) + _bytes(2, _bytes(1, response)))
    out += _bytes(9, bytes(codes))
    for scheme in op.get("schemes", []):
        out += _str(10, scheme)
    for k, v in op.items():
        if k.startswith("x-"):
            out += _bytes(13, _named_any(k, v))
    return bytes(out)


_PATH_ITEM_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def paths(doc_paths: dict[str, Any]) -> bytes:
    """The Paths message: NamedPathItem per path, each PathItem with its operations and parameters."""
    out = bytearray()
    for path, item in doc_paths.items():
        body = bytearray()
        for method, number in _PATH_ITEM_FIELDS.items():
            if method in item:
                body += _bytes(number, _operation(item[method]))
        for p in item.get("parameters", []):
            body += _bytes(9, _parameter(p))
        out += _bytes(2, _str(1, path) + _bytes(2, bytes(body)))
    return bytes(out)


def document(doc: dict[str, Any]) -> bytes:
    out = bytearray()
    out += _str(1, doc.get("swagger", "2.0"))
    info = doc.get("info", {})
    out += _bytes(2, _str(1, info.get("title", "")) + _str(2, info.get("version", "")))
    out += _bytes(8, paths(doc.get("paths", {})))
    defs = b"".join(_bytes(1, _str(1, name) + _bytes(2, schema(s))) for name, s in doc.get("definitions", {}).items())
    out += _bytes(9, defs)
    return bytes(out)
