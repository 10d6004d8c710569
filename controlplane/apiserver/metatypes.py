"""The types of ObjectMeta's fields, checked before any other metadata rule.

kube-apiserver decodes `metadata` into a typed struct, so `generateName: 5` or
`managedFields: "x"` never reach storage: the request fails to decode. Here objects stay
plain dicts, so the same guarantee is a check: without it such a value is stored, and every
typed client (client-go, the `kubernetes` Python client) then fails to list that namespace.
Each wrong type is a 422 cause naming the field.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.errors import Cause

_STRINGS = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "creationTimestamp",
            "deletionTimestamp")
_INTEGERS = ("generation", "deletionGracePeriodSeconds")
_OWNER_STRINGS = ("apiVersion", "kind", "name", "uid")
_OWNER_BOOLS = ("controller", "blockOwnerDeletion")
_MANAGED_STRINGS = ("manager", "operation", "apiVersion", "time", "fieldsType", "subresource")


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _wrong(path: str, value: Any, expected: str) -> Cause:
    shown = repr(value) if isinstance(value, int | float | bool | str) and len(repr(value)) < 64 else _type_name(value)
    return Cause(path, f"Invalid value: {shown}: must be {expected}, not {_type_name(value)}", "FieldValueTypeInvalid")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def metadata_type_causes(meta: dict[str, Any]) -> list[Cause]:
    """One cause per metadata field whose JSON type is not the one ObjectMeta declares."""
    causes: list[Cause] = []
    for key in _STRINGS:
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            causes.append(_wrong(f"metadata.{key}", value, "a string"))
    for key in _INTEGERS:
        value = meta.get(key)
        if value is not None and not _is_int(value):
            causes.append(_wrong(f"metadata.{key}", value, "an integer"))
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and not isinstance(value, dict):
            causes.append(_wrong(f"metadata.{key}", value, "a map of strings"))
    finalizers = meta.get("finalizers")
    if finalizers is not None and not isinstance(finalizers, list):
        causes.append(_wrong("metadata.finalizers", finalizers, "a list of strings"))
    elif finalizers:
        causes += [_wrong(f"metadata.finalizers[{i}]", f, "a string") for i, f in enumerate(finalizers)
                   if not isinstance(f, str)]
    owners = meta.get("ownerReferences")
    if owners is not None and not isinstance(owners, list):
        causes.append(_wrong("metadata.ownerReferences", owners, "a list of objects"))
    elif owners:
        for i, ref in enumerate(owners):
            if not isinstance(ref, dict):
                continue  # validate_metadata names it
            causes += [_wrong(f"metadata.ownerReferences[{i}].{k}", ref[k], "a string")
                       for k in _OWNER_STRINGS if ref.get(k) is not None and not isinstance(ref[k], str)]
            causes += [_wrong(f"metadata.ownerReferences[{i}].{k}", ref[k], "a boolean")
                       for k in _OWNER_BOOLS if ref.get(k) is not None and not isinstance(ref[k], bool)]
    causes += _managed_fields_causes(meta.get("managedFields"))
    return causes


def _managed_fields_causes(entries: Any) -> list[Cause]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [_wrong("metadata.managedFields", entries, "a list of objects")]
    causes: list[Cause] = []
    for i, entry in enumerate(entries):
        path = f"metadata.managedFields[{i}]"
        if not isinstance(entry, dict):
            causes.append(_wrong(path, entry, "an object"))
            continue
        causes += [_wrong(f"{path}.{k}", entry[k], "a string")
                   for k in _MANAGED_STRINGS if entry.get(k) is not None and not isinstance(entry[k], str)]
        fields = entry.get("fieldsV1")
        if fields is not None and not isinstance(fields, dict):
            causes.append(_wrong(f"{path}.fieldsV1", fields, "an object"))
    return causes
