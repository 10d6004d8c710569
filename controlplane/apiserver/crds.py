"""CustomResourceDefinitions: checking them, and turning each served version into a
`ResourceInfo` the router serves — at start for the stored CRDs, and at run time when
`kubectl apply -f crd.yaml` creates or changes one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.apiserver.errors import Cause
from controlplane.apiserver.metadata import dns1123_label_errors, dns1123_subdomain_errors
from controlplane.apiserver.resources import Column, ResourceInfo
from controlplane.apiserver.schema import StructuralSchema

_AGE = Column("Age", "date", ".metadata.creationTimestamp")


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    name = (crd.get("metadata") or {}).get("name", "")
    if group and plural and name != f"{plural}.{group}":
        causes.append(Cause("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    if group and (dns1123_subdomain_errors(group) or "." not in group):
        causes.append(Cause("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot'))
    for field_name in ("plural", "singular"):
        value = names.get(field_name)
        if value and dns1123_label_errors(value):
            causes.append(Cause(f"spec.names.{field_name}", f'Invalid value: "{value}": {dns1123_label_errors(value)[0]}'))
    versions = spec.get("versions") or []
    storage = [v for v in versions if v.get("storage")]
    if versions and len(storage) != 1:
        causes.append(Cause("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    seen: set[str] = set()
    for i, v in enumerate(versions):
        if v.get("name") in seen:
            causes.append(Cause(f"spec.versions[{i}].name", f'Duplicate value: "{v.get("name")}"', "FieldValueDuplicate"))
        seen.add(v.get("name", ""))
        schema = ((v.get("schema") or {}).get("openAPIV3Schema"))
        if schema is None:
            causes.append(Cause(f"spec.versions[{i}].schema.openAPIV3Schema", "Required value: schemas are required",
                                "FieldValueRequired"))
        else:
            causes += [Cause(f"spec.versions[{i}].schema.openAPIV3Schema{p}", m)
                       for p, m in _structural_errors(schema, "")]
            try:
                StructuralSchema(schema, kind=names.get("kind", ""))
            except Exception as exc:  # CEL that does not compile, invalid JSON Schema
                causes.append(Cause(f"spec.versions[{i}].schema.openAPIV3Schema", f"Invalid value: {exc}"))
    return causes


def _structural_errors(s: dict[str, Any], path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    typed = "type" in s or s.get("x-kubernetes-int-or-string") or s.get("x-kubernetes-preserve-unknown-fields")
    if not typed and path:
        out.append((f"{path}.type", "Required value: must not be empty for specified object fields"))
    for k, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            out += _structural_errors(sub, f"{path}.properties[{k}]")
    if isinstance(s.get("items"), dict):
        out += _structural_errors(s["items"], f"{path}.items")
    if isinstance(s.get("additionalProperties"), dict):
        out += _structural_errors(s["additionalProperties"], f"{path}.additionalProperties")
    return out


def infos_for(crd: dict[str, Any]) -> list[ResourceInfo]:
    spec = crd["spec"]
    names = spec["names"]
    storage = next((v["name"] for v in spec["versions"] if v.get("storage")), "")
    infos = []
    for v in spec["versions"]:
        if not v.get("served", True):
            continue
        schema = (v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object",
                                                                      "x-kubernetes-preserve-unknown-fields": True}
        printer = v.get("additionalPrinterColumns")
        columns = [Column(c["name"], c.get("type", "string"), c["jsonPath"], c.get("format", ""),
                          c.get("description", ""), c.get("priority", 0)) for c in printer] if printer is not None \
            else [_AGE]
        infos.append(ResourceInfo(
            group=spec["group"], version=v["name"], kind=names["kind"], plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(), namespaced=spec["scope"] == "Namespaced",
            schema=StructuralSchema(schema, kind=names["kind"]), raw_schema=schema,
            short_names=list(names.get("shortNames") or []), categories=list(names.get("categories") or []),
            has_status="status" in (v.get("subresources") or {}), tracks_generation=True, columns=columns,
            storage_version=storage, crd_name=crd["metadata"]["name"], subresources=dict(v.get("subresources") or {}),
        ))
    return infos


def accepted_status(crd: dict[str, Any]) -> dict[str, Any]:
    """The status kube-apiserver settles on for a CRD it serves: names accepted, established."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = dict(crd["spec"]["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    old = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}

    def cond(t: str, reason: str, message: str) -> dict[str, Any]:
        prev = old.get(t)
        since = prev["lastTransitionTime"] if prev and prev.get("status") == "True" else now
        return {"type": t, "status": "True", "reason": reason, "message": message, "lastTransitionTime": since}

    stored = list((crd.get("status") or {}).get("storedVersions") or [])
    storage = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
    if storage not in stored:
        stored.append(storage)
    return {
        "conditions": [cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                       cond("Established", "InitialNamesAccepted", "the initial names have been accepted")],
        "acceptedNames": names,
        "storedVersions": stored,
    }
