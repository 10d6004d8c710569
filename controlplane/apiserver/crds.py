"""CustomResourceDefinitions: checking them, and turning each served version into a
`ResourceInfo` the router serves — at start for the stored CRDs, and at run time when
`kubectl apply -f crd.yaml` creates or changes one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.apiserver.errors import Cause
from controlplane.apiserver.metadata import dns1123_label_errors, dns1123_subdomain_errors
from controlplane.apiserver.regex import schema_pattern_errors
from controlplane.apiserver.resources import Column, ResourceInfo
from controlplane.apiserver.schema import StructuralSchema

_AGE = Column("Age", "date", ".metadata.creationTimestamp")


def _shape_errors(crd: dict[str, Any]) -> list[Cause]:
    """Required fields and JSON types, so the checks below and `accepted_status` can rely on them."""
    def required(path: str, what: str) -> Cause:
        return Cause(path, f"Required value: {what}", "FieldValueRequired")

    def wrong(path: str, what: str) -> Cause:
        return Cause(path, f"Invalid value: must be {what}", "FieldValueTypeInvalid")

    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [required("spec", "an object with group, names, scope and versions") if spec is None
                else wrong("spec", "an object")]
    out: list[Cause] = []
    if not isinstance(spec.get("group"), str) or not spec.get("group"):
        out.append(required("spec.group", "a non-empty string"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        out.append(Cause("spec.scope", f"Unsupported value: {spec.get('scope')!r}: supported values: "
                                       '"Cluster", "Namespaced"', "FieldValueNotSupported"))
    names = spec.get("names")
    if not isinstance(names, dict):
        out.append(required("spec.names", "an object with plural and kind") if names is None
                   else wrong("spec.names", "an object"))
    else:
        out += [required(f"spec.names.{k}", "a non-empty string") for k in ("plural", "kind")
                if not isinstance(names.get(k), str) or not names.get(k)]
        out += [wrong(f"spec.names.{k}", "a string") for k in ("singular", "listKind")
                if names.get(k) is not None and not isinstance(names.get(k), str)]
        out += [wrong(f"spec.names.{k}", "a list of strings") for k in ("shortNames", "categories")
                if names.get(k) is not None and (not isinstance(names.get(k), list)
                                                 or not all(isinstance(x, str) for x in names[k]))]
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        out.append(required("spec.versions", "a list of at least one version"))
        return out
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(v, dict):
            out.append(wrong(path, "an object"))
            continue
        if not isinstance(v.get("name"), str) or not v.get("name"):
            out.append(required(f"{path}.name", "a non-empty string"))
        out += [wrong(f"{path}.{k}", "a boolean") for k in ("served", "storage")
                if v.get(k) is not None and not isinstance(v.get(k), bool)]
        for k in ("schema", "subresources"):
            if v.get(k) is not None and not isinstance(v.get(k), dict):
                out.append(wrong(f"{path}.{k}", "an object"))
        schema = v.get("schema")
        if isinstance(schema, dict) and schema.get("openAPIV3Schema") is not None \
                and not isinstance(schema.get("openAPIV3Schema"), dict):
            out.append(wrong(f"{path}.schema.openAPIV3Schema", "an object"))
        columns = v.get("additionalPrinterColumns")
        if columns is not None and (not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns)):
            out.append(wrong(f"{path}.additionalPrinterColumns", "a list of objects"))
    return out


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = _shape_errors(crd)
    if causes:
        return causes
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
                       for p, m in [*_structural_errors(schema, ""), *schema_pattern_errors(schema)]]
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
            deprecation_warning=deprecation_warning(spec["group"], v, names["kind"]),
        ))
    return infos


def deprecation_warning(group: str, version: dict[str, Any], kind: str) -> str:
    """What kube-apiserver warns of on every request for a deprecated version: the version's
    `deprecationWarning`, else `<group>/<version> <Kind> is deprecated`; "" when not deprecated."""
    if not version.get("deprecated"):
        return ""
    return str(version.get("deprecationWarning") or f"{group}/{version['name']} {kind} is deprecated")


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
