"""How Kubernetes hands JSON values to CEL, for cel-python: object properties whose names
are CEL keywords or contain `.`, `-`, `/`, `__` are escaped (`namespace` -> `__namespace__`)
while map keys are not, and the Kubernetes CEL library functions cel-python lacks
(`<string>.replace`) are supplied. A JSON integer outside int64 becomes a double, as
Kubernetes' JSON decoding makes it (CEL's int is int64)."""

from __future__ import annotations

from typing import Any

from celpy import celtypes
from celpy.adapter import json_to_cel

Schema = dict[str, Any]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

CEL_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else",
                          "for", "function", "if", "import", "let", "loop", "package", "namespace",
                          "return", "var", "void", "while"})


def escape_property(name: str) -> str:
    """Kubernetes' CEL escaping of an object property name."""
    if name in CEL_RESERVED:
        return f"__{name}__"
    return (name.replace("__", "__underscores__").replace(".", "__dot__")
            .replace("-", "__dash__").replace("/", "__slash__"))


def to_cel(schema: Schema, value: Any) -> Any:
    """A JSON value as CEL sees it, with the properties of typed objects escaped."""
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            return celtypes.MapType({
                celtypes.StringType(escape_property(k)): to_cel(props.get(k, {}), v) for k, v in value.items()})
        extra = schema.get("additionalProperties")
        sub = extra if isinstance(extra, dict) else {}
        return celtypes.MapType({celtypes.StringType(k): to_cel(sub, v) for k, v in value.items()})
    if isinstance(value, list):
        items = schema.get("items", {})
        return celtypes.ListType([to_cel(items if isinstance(items, dict) else {}, v) for v in value])
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        try:
            return celtypes.DoubleType(value)  # as Kubernetes' JSON decoding keeps it: a float64
        except OverflowError:  # beyond any float64
            return celtypes.DoubleType(float("inf") if value > 0 else float("-inf"))
    return json_to_cel(value)


def _replace(s: Any, old: Any, new: Any, n: Any = None) -> celtypes.StringType:
    """Kubernetes CEL strings library: `<string>.replace(old, new[, n])`."""
    count = -1 if n is None or int(n) < 0 else int(n)
    return celtypes.StringType(str(s).replace(str(old), str(new), count))


K8S_FUNCTIONS: dict[str, Any] = {"replace": _replace}
"""Kubernetes CEL library functions that cel-python does not ship, by name."""
