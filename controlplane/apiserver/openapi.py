"""`/openapi/v2`: definitions for every served kind, built from their structural schemas.

As kube-apiserver does for CRDs, v3-only constructs are dropped on the way to v2
(`nullable`, `oneOf`/`anyOf`/`not`, CEL rules) and nodes that keep unknown fields lose
their `properties`, so kubectl's client-side validation never rejects what the server
accepts. Each definition carries `x-kubernetes-group-version-kind`, which is how kubectl
finds the schema for `explain`.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.resources import Registry, ResourceInfo
from controlplane.common.version import __version__

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_S = {"type": "string"}
_DROP = ("nullable", "oneOf", "anyOf", "not", "allOf", "x-kubernetes-validations", "x-kubernetes-list-type",
         "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-embedded-resource")

_BUILTIN_PREFIX = {
    "": "io.k8s.api.core",
    "coordination.k8s.io": "io.k8s.api.coordination",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}

OBJECT_META_SCHEMA: dict[str, Any] = {
    "description": "Standard object metadata: name, namespace, labels, annotations, owners, finalizers.",
    "type": "object",
    "properties": {
        "name": {**_S, "description": "Name, unique within a namespace (or the cluster for cluster-scoped kinds)."},
        "generateName": {**_S, "description": "Prefix for a server-generated name, used when name is empty."},
        "namespace": {**_S, "description": "Namespace of the object; empty for cluster-scoped kinds."},
        "uid": {**_S, "description": "Unique identifier, set by the server."},
        "resourceVersion": {**_S, "description": "Opaque version for optimistic concurrency and watches."},
        "generation": {"type": "integer", "format": "int64", "description": "Bumped on every spec change."},
        "creationTimestamp": {**_S, "format": "date-time", "description": "When the object was created."},
        "deletionTimestamp": {**_S, "format": "date-time", "description": "When deletion was requested."},
        "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
        "labels": {"type": "object", "additionalProperties": _S, "description": "Labels for selection."},
        "annotations": {"type": "object", "additionalProperties": _S, "description": "Free-form annotations."},
        "finalizers": {"type": "array", "items": _S, "description": "Must be empty before deletion completes."},
        "ownerReferences": {"type": "array", "description": "Objects this one depends on (garbage collection).",
                            "items": {"type": "object", "required": ["apiVersion", "kind", "name", "uid"],
                                      "properties": {"apiVersion": _S, "kind": _S, "name": _S, "uid": _S,
                                                     "controller": {"type": "boolean"},
                                                     "blockOwnerDeletion": {"type": "boolean"}}}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "selfLink": _S,
    },
}


def definition_name(info: ResourceInfo) -> str:
    if info.builtin:
        return f"{_BUILTIN_PREFIX.get(info.group, 'io.k8s.api.' + info.group)}.{info.version}.{info.kind}"
    return ".".join(reversed(info.group.split("."))) + f".{info.version}.{info.kind}"


def to_v2(s: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k in _DROP:
            continue
        if k == "properties":
            out[k] = {name: to_v2(sub) for name, sub in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = to_v2(v)
        else:
            out[k] = v
    if s.get("nullable"):
        out.pop("type", None)
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if s.get("x-kubernetes-preserve-unknown-fields"):
        for k in ("properties", "type", "items", "additionalProperties", "required"):
            out.pop(k, None)
    return out


def kind_definition(info: ResourceInfo) -> dict[str, Any]:
    schema = to_v2(info.raw_schema or {"type": "object"})
    props = dict(schema.get("properties") or {})
    props["metadata"] = {"$ref": f"#/definitions/{OBJECT_META}", "description": "Standard object metadata."}
    props.setdefault("apiVersion", {**_S, "description": "APIVersion of this representation of the object."})
    props.setdefault("kind", {**_S, "description": "Kind of this object."})
    schema["properties"] = props
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [{"group": info.group, "kind": info.kind, "version": info.version}]
    return schema


LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
COMMON_DEFINITIONS: dict[str, Any] = {
    LIST_META: {"description": "Metadata of a list: resourceVersion and the continue token of a paged list.",
                "type": "object", "properties": {"resourceVersion": _S, "continue": _S, "selfLink": _S,
                                                 "remainingItemCount": {"type": "integer", "format": "int64"}}},
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch": {
        "description": "A JSON patch, merge patch, strategic merge patch or apply configuration.", "type": "object"},
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status": {
        "description": "The result of an operation that returns no object.", "type": "object",
        "properties": {"apiVersion": _S, "kind": _S, "status": _S, "message": _S, "reason": _S,
                       "code": {"type": "integer", "format": "int32"},
                       "details": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}]},
}


def list_definition(info: ResourceInfo, ref: dict[str, Any], list_meta_ref: dict[str, Any]) -> dict[str, Any]:
    return {"description": f"A list of {info.kind} objects.", "type": "object", "required": ["items"],
            "properties": {"apiVersion": _S, "kind": _S, "metadata": list_meta_ref,
                           "items": {"type": "array", "items": ref}},
            "x-kubernetes-group-version-kind": [{"group": info.group, "kind": info.list_kind,
                                                 "version": info.version}]}


def build(registry: Registry) -> dict[str, Any]:
    from controlplane.apiserver.openapi_paths import PathBuilder, base_path

    definitions: dict[str, Any] = {OBJECT_META: OBJECT_META_SCHEMA, **COMMON_DEFINITIONS}
    paths: dict[str, Any] = {}
    builder = PathBuilder(v3=False)
    for info in sorted(registry.all(), key=definition_name):
        name = definition_name(info)
        definitions[name] = kind_definition(info)
        definitions[name + "List"] = list_definition(info, builder.ref(name), builder.ref(LIST_META))
        paths.update(builder.resource_paths(info, base_path(info), name, name + "List"))
    return {
        "swagger": "2.0",
        "info": {"title": "dvp", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "definitions": definitions,
    }
