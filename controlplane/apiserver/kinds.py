"""Per-kind strategies of the built-in kinds: what the server fills in or checks on create and
update beyond the schema (Secret.stringData folding, Namespace phase and finalizers, CRD
names and status). Custom resources have no strategy beyond their schema."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from controlplane.apiserver.crds import accepted_status, validate_crd
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.resources import ResourceInfo

CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
NAMESPACE_FINALIZER = "kubernetes"


def prepare(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Fill in server-owned fields of built-in kinds; return kind-specific problems."""
    if not info.builtin:
        return []
    for field_name in ("spec", "status"):
        if field_name in obj and not isinstance(obj[field_name], dict) and info.kind in _OBJECT_PARTS:
            return [Cause(field_name, f"Invalid value: must be an object, not {type(obj[field_name]).__name__}",
                          "FieldValueTypeInvalid")]
    try:
        return _prepare(info, obj, old)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:  # a shape no check above foresaw: 422, not 500
        return [Cause("", f"Invalid value: a field of this {info.kind} has the wrong type or is missing ({exc!r})")]


_OBJECT_PARTS = ("Namespace", "CustomResourceDefinition", "Node")


def _prepare(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    kind = info.kind
    if kind == "Secret":
        return _secret(obj)
    if kind == "Namespace":
        if old is None:
            obj.setdefault("spec", {}).setdefault("finalizers", [NAMESPACE_FINALIZER])
        status = obj.setdefault("status", {})
        status["phase"] = "Terminating" if (obj.get("metadata") or {}).get("deletionTimestamp") else "Active"
        return []
    if kind == "CustomResourceDefinition":
        causes = validate_crd(obj)
        if old is not None:
            for field_name in ("group",):
                if (old.get("spec") or {}).get(field_name) != (obj.get("spec") or {}).get(field_name):
                    causes.append(Cause(f"spec.{field_name}", "Invalid value: field is immutable"))
            if (old.get("spec") or {}).get("scope") != (obj.get("spec") or {}).get("scope"):
                causes.append(Cause("spec.scope", "Invalid value: field is immutable"))
        if not causes:
            meta = obj.setdefault("metadata", {})
            if old is None and CRD_CLEANUP_FINALIZER not in (meta.get("finalizers") or []):
                meta["finalizers"] = [*(meta.get("finalizers") or []), CRD_CLEANUP_FINALIZER]
            obj["status"] = accepted_status({**obj, "status": (old or {}).get("status") or obj.get("status")})
        return causes
    return []


def _secret(obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    data = obj.get("data") or {}
    for field_name, value in (("stringData", string_data), ("data", data)):
        if not isinstance(value, dict):
            causes.append(Cause(field_name, f"Invalid value: must be a map of strings, not {type(value).__name__}",
                                "FieldValueTypeInvalid"))
    if causes:
        return causes
    causes = [Cause(f"stringData[{k}]", "Invalid value: \"<value omitted>\": must be a string", "FieldValueTypeInvalid")
              for k, v in string_data.items() if not isinstance(v, str)]
    if causes:
        return causes
    for k, v in string_data.items():
        data[k] = base64.b64encode(v.encode()).decode()
    for k, v in data.items():
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError, TypeError):
            causes.append(Cause(f"data[{k}]", "Invalid value: \"<value omitted>\": illegal base64 data"))
    if data:
        obj["data"] = data
    return causes


def immutable_violation(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Secrets and ConfigMaps marked immutable refuse changes to their data."""
    if info.kind not in ("Secret", "ConfigMap") or not info.builtin or not old.get("immutable"):
        return []
    causes = []
    for field_name in ("data", "binaryData"):
        if obj.get(field_name) != old.get(field_name):
            causes.append(Cause(field_name, "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden"))
    if not obj.get("immutable"):
        causes.append(Cause("immutable", "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden"))
    return causes
