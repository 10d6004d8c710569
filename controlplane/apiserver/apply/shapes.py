"""How each part of an object merges under server-side apply, read from the kind's schema.

A custom resource's shape is its CRD's structural schema: `x-kubernetes-list-type`
(`atomic` by default, `set`, `map` with `x-kubernetes-list-map-keys`) and
`x-kubernetes-map-type: atomic`. Built-in kinds carry the same markers kube's Go types
declare (`+listType`, `+listMapKey`), added here over their schemas; ObjectMeta is the same
for every kind (labels and annotations granular, ownerReferences keyed by uid, finalizers
a set). Parts a schema doesn't describe (preserve-unknown-fields) merge as kube's deduced
type does: maps granular, lists atomic.
"""

from __future__ import annotations

import copy
from typing import Any

_S: dict[str, Any] = {"type": "string"}
_STR_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _S}

OBJECT_META: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{k: _S for k in ("name", "generateName", "namespace", "uid", "resourceVersion", "creationTimestamp",
                           "deletionTimestamp", "selfLink")},
        "generation": {"type": "integer"}, "deletionGracePeriodSeconds": {"type": "integer"},
        "labels": _STR_MAP, "annotations": _STR_MAP,
        "finalizers": {"type": "array", "items": _S, "x-kubernetes-list-type": "set"},
        "ownerReferences": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
            "items": {"type": "object", "properties": {
                "apiVersion": _S, "kind": _S, "name": _S, "uid": _S,
                "controller": {"type": "boolean"}, "blockOwnerDeletion": {"type": "boolean"}}},
        },
        "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    },
}

# (kind, dotted path) -> (list type, map keys): the markers of kube's Go types for the built-in
# kinds the server serves. Lists not named here are atomic, as in kube.
BUILTIN_LISTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "Namespace": {"status.conditions": ("map", ("type",))},
    "Node": {"spec.podCIDRs": ("set", ()), "status.conditions": ("map", ("type",)),
             "status.addresses": ("map", ("type",)), "status.images": ("atomic", ()),
             "status.volumesInUse": ("atomic", ())},
    "Service": {"spec.ports": ("map", ("port", "protocol")), "spec.clusterIPs": ("atomic", ()),
                "spec.ipFamilies": ("atomic", ()), "spec.externalIPs": ("atomic", ()),
                "status.conditions": ("map", ("type",)), "status.loadBalancer.ingress": ("atomic", ())},
    "Endpoints": {"subsets": ("atomic", ())},
    "CustomResourceDefinition": {"status.conditions": ("map", ("type",))},
}


def _at(schema: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    node = schema
    for part in parts:
        props = node.setdefault("properties", {})
        node = props.setdefault(part, {"type": "object"})
        if node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
            node["properties"] = {}
    return node


def shape_of(kind: str, schema: dict[str, Any] | None, *, builtin: bool) -> dict[str, Any]:
    """The schema of `kind` with ObjectMeta and the built-in list markers filled in."""
    out: dict[str, Any] = copy.deepcopy(schema) if schema else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    out.setdefault("properties", {})["metadata"] = OBJECT_META
    if builtin:
        for dotted, (list_type, keys) in BUILTIN_LISTS.get(kind, {}).items():
            parts = dotted.split(".")
            parent = _at(out, parts[:-1])
            node = parent.setdefault("properties", {}).setdefault(parts[-1], {"type": "array"})
            node["type"] = "array"
            node["x-kubernetes-list-type"] = list_type
            if keys:
                node["x-kubernetes-list-map-keys"] = list(keys)
            node.setdefault("items", {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
            if "protocol" in keys:  # kube defaults a port's protocol to TCP before keying it
                protocol = node["items"].setdefault("properties", {}).setdefault("protocol", {"type": "string"})
                protocol.setdefault("default", "TCP")
    return out


def child(schema: dict[str, Any] | None, key: str) -> tuple[dict[str, Any] | None, bool]:
    """The schema of field `key` of an object, and whether `key` is a named (declared) field."""
    if schema is None:
        return None, False
    props = schema.get("properties")
    if props and key in props:
        return props[key], True
    addl = schema.get("additionalProperties")
    if isinstance(addl, dict):
        return addl, False
    return None, False


def map_is_atomic(schema: dict[str, Any] | None) -> bool:
    return schema is not None and schema.get("x-kubernetes-map-type") == "atomic"


def list_type(schema: dict[str, Any] | None) -> tuple[str, list[str]]:
    """(`atomic`|`set`|`map`, map keys) of a list."""
    if schema is None:
        return "atomic", []
    kind = schema.get("x-kubernetes-list-type") or "atomic"
    return kind, list(schema.get("x-kubernetes-list-map-keys") or [])


def key_defaults(schema: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults of a map list's key fields (Service ports: protocol TCP)."""
    sub = items(schema)
    if sub is None or schema is None:
        return {}
    props = sub.get("properties") or {}
    return {k: props[k]["default"] for k in schema.get("x-kubernetes-list-map-keys") or ()
            if isinstance(props.get(k), dict) and "default" in props[k]}


def items(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    found = schema.get("items")
    return found if isinstance(found, dict) else None
