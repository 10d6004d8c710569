"""apiextensions.k8s.io/v1 messages (k8s.io/apiextensions-apiserver `generated.proto`):
CustomResourceDefinition with its whole JSONSchemaProps tree.

JSONSchemaProps has three unions the generic tables cannot say: `items` (one schema or a
list of them), `additionalProperties`/`additionalItems` (a bool or a schema) and the values
of `dependencies` (a schema or a list of property names); they are registered as field
types of their own. JSON values (`default`, `enum`, `example`) travel as JSON text."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.protobuf import wire
from controlplane.apiserver.protobuf.encoding import encode
from controlplane.apiserver.protobuf.scalars import register_type
from controlplane.apiserver.protobuf.schema import (
    REGISTRY,
    PathError,
    b,
    decode,
    f,
    i32,
    i64,
    m,
    mapof,
    message,
    rep,
    s,
    t,
)

PROPS = "JSONSchemaProps"
_T1, _T2 = wire.key(1, wire.LENGTH), wire.key(2, wire.LENGTH)


def _parts(value: bytes, where: str) -> list[tuple[int, int, int | bytes]]:
    try:
        return list(wire.fields(value))
    except wire.WireError as exc:
        raise PathError(f"{where}: {exc}") from None


def _schema(value: int | bytes, where: str) -> dict[str, Any]:
    if not isinstance(value, bytes):
        raise PathError(f"{where}: expected an embedded JSONSchemaProps")
    return decode(REGISTRY[PROPS], value, where + ".")


def _enc_schema_or_list(tag: bytes, v: Any, items: list[bytes], what: str) -> bytes:
    """A union of one schema (field 1) and a list (field 2, one entry per item, already encoded)."""
    if isinstance(v, list):
        inner = b"".join(wire.length_delimited(_T2, item) for item in items)
    elif isinstance(v, dict):
        inner = wire.length_delimited(_T1, encode(REGISTRY[PROPS], v))
    else:
        raise TypeError(f"must be a schema or a list of {what}")
    return wire.length_delimited(tag, inner)


def _enc_or_array(tag: bytes, v: Any) -> bytes:
    items = [encode(REGISTRY[PROPS], x) for x in v if isinstance(x, dict)] if isinstance(v, list) else []
    return _enc_schema_or_list(tag, v, items, "schemas")


def _dec_or_array(value: bytes, where: str) -> Any:
    one: Any = None
    many: list[Any] = []
    for number, _wt, v in _parts(value, where):
        if number == 1:
            one = _schema(v, where)
        elif number == 2:
            many.append(_schema(v, f"{where}[{len(many)}]"))
    return one if one is not None else many


def _enc_or_bool(tag: bytes, v: Any) -> bytes:
    if isinstance(v, bool):
        return wire.length_delimited(tag, b"\x08" + (b"\x01" if v else b"\x00"))
    if isinstance(v, dict):
        return wire.length_delimited(tag, b"\x08\x01" + wire.length_delimited(_T2, encode(REGISTRY[PROPS], v)))
    raise TypeError("must be a bool or a schema")


def _dec_or_bool(value: bytes, where: str) -> Any:
    allows: Any = False
    for number, _wt, v in _parts(value, where):
        if number == 1:
            allows = bool(v)
        elif number == 2:
            return _schema(v, where)
    return allows


def _enc_or_strings(tag: bytes, v: Any) -> bytes:
    items = [str(x).encode() for x in v] if isinstance(v, list) else []
    return _enc_schema_or_list(tag, v, items, "property names")


def _dec_or_strings(value: bytes, where: str) -> Any:
    names: list[str] = []
    for number, _wt, v in _parts(value, where):
        if number == 1:
            return _schema(v, where)
        if number == 2 and isinstance(v, bytes):
            try:
                names.append(v.decode())
            except UnicodeDecodeError:
                raise PathError(f"{where}: not valid UTF-8") from None
    return names


register_type("schema_or_array", _enc_or_array, _dec_or_array)
register_type("schema_or_bool", _enc_or_bool, _dec_or_bool)
register_type("schema_or_strings", _enc_or_strings, _dec_or_strings)

message("CustomResourceDefinition", m(1, "metadata", "ObjectMeta"), m(2, "spec", "CustomResourceDefinitionSpec"),
        m(3, "status", "CustomResourceDefinitionStatus"))
message("CustomResourceDefinitionSpec",
        s(1, "group", keep=True), m(3, "names", "CustomResourceDefinitionNames"), s(4, "scope", keep=True),
        rep(7, "versions", "CustomResourceDefinitionVersion"), m(9, "conversion", "CustomResourceConversion"),
        b(10, "preserveUnknownFields"))
message("CustomResourceDefinitionNames", s(1, "plural", keep=True), s(2, "singular"), rep(3, "shortNames", "string"),
        s(4, "kind", keep=True), s(5, "listKind"), rep(6, "categories", "string"))
message("CustomResourceDefinitionVersion",
        s(1, "name", keep=True), b(2, "served", keep=True), b(3, "storage", keep=True), b(7, "deprecated"),
        s(8, "deprecationWarning", keep=True), m(4, "schema", "CustomResourceValidation"),
        m(5, "subresources", "CustomResourceSubresources"),
        rep(6, "additionalPrinterColumns", "CustomResourceColumnDefinition"),
        rep(9, "selectableFields", "SelectableField"))
message("CustomResourceValidation", m(1, "openAPIV3Schema", PROPS))
message("CustomResourceSubresources", m(1, "status", "CustomResourceSubresourceStatus"),
        m(2, "scale", "CustomResourceSubresourceScale"))
message("CustomResourceSubresourceStatus")
message("CustomResourceSubresourceScale", s(1, "specReplicasPath", keep=True), s(2, "statusReplicasPath", keep=True),
        s(3, "labelSelectorPath", keep=True))
message("CustomResourceColumnDefinition", s(1, "name", keep=True), s(2, "type", keep=True), s(3, "format"),
        s(4, "description"), i32(5, "priority"), s(6, "jsonPath", keep=True))
message("SelectableField", s(1, "jsonPath", keep=True))
message("CustomResourceConversion", s(1, "strategy", keep=True), m(2, "webhook", "WebhookConversion"))
message("WebhookConversion", m(2, "clientConfig", "WebhookClientConfig"), rep(3, "conversionReviewVersions", "string"))
message("WebhookClientConfig", s(3, "url", keep=True), m(1, "service", "ServiceReference"), f(2, "caBundle", "bytes"))
message("ServiceReference", s(1, "namespace", keep=True), s(2, "name", keep=True), s(3, "path", keep=True),
        i32(4, "port", keep=True))
message("CustomResourceDefinitionStatus",
        rep(1, "conditions", "CustomResourceDefinitionCondition"), m(2, "acceptedNames", "CustomResourceDefinitionNames"),
        rep(3, "storedVersions", "string"), i64(4, "observedGeneration"))
message("CustomResourceDefinitionCondition", s(1, "type", keep=True), s(2, "status", keep=True),
        t(3, "lastTransitionTime"), s(4, "reason"), s(5, "message"), i64(6, "observedGeneration"))
message(PROPS,
        s(1, "id"), s(2, "$schema"), s(3, "$ref", keep=True), s(4, "description"), s(5, "type"), s(6, "format"),
        s(7, "title"), f(8, "default", "json", keep=True), f(9, "maximum", "double", keep=True),
        b(10, "exclusiveMaximum"), f(11, "minimum", "double", keep=True), b(12, "exclusiveMinimum"),
        i64(13, "maxLength", keep=True), i64(14, "minLength", keep=True), s(15, "pattern"),
        i64(16, "maxItems", keep=True), i64(17, "minItems", keep=True), b(18, "uniqueItems"),
        f(19, "multipleOf", "double", keep=True), f(20, "enum", "json", repeated=True),
        i64(21, "maxProperties", keep=True), i64(22, "minProperties", keep=True), rep(23, "required", "string"),
        f(24, "items", "schema_or_array", keep=True), rep(25, "allOf", PROPS), rep(26, "oneOf", PROPS),
        rep(27, "anyOf", PROPS), m(28, "not", PROPS), mapof(29, "properties", PROPS),
        f(30, "additionalProperties", "schema_or_bool", keep=True), mapof(31, "patternProperties", PROPS),
        mapof(32, "dependencies", "schema_or_strings"), f(33, "additionalItems", "schema_or_bool", keep=True),
        mapof(34, "definitions", PROPS), m(35, "externalDocs", "ExternalDocumentation"),
        f(36, "example", "json", keep=True), b(37, "nullable"),
        b(38, "x-kubernetes-preserve-unknown-fields", keep=True), b(39, "x-kubernetes-embedded-resource"),
        b(40, "x-kubernetes-int-or-string"), rep(41, "x-kubernetes-list-map-keys", "string"),
        s(42, "x-kubernetes-list-type", keep=True), s(43, "x-kubernetes-map-type", keep=True),
        rep(44, "x-kubernetes-validations", "ValidationRule"))
message("ExternalDocumentation", s(1, "description"), s(2, "url"))
message("ValidationRule", s(1, "rule", keep=True), s(2, "message"), s(3, "messageExpression"), s(4, "reason", keep=True),
        s(5, "fieldPath"), b(6, "optionalOldSelf", keep=True))
