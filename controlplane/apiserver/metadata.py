"""ObjectMeta rules shared by every kind: names, labels, annotations, finalizers, owners.

These are the checks kube-apiserver applies to `metadata` before any kind-specific schema
(names are DNS-1123 subdomains, namespaces DNS-1123 labels, label keys are qualified names
with an optional DNS prefix, ...).
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.apiserver.errors import Cause
from controlplane.apiserver.metatypes import metadata_type_causes

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_TOTAL_ANNOTATION_BYTES = 256 * 1024


def dns1123_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        errs.append("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character")
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                    "and must start and end with an alphanumeric character")
    return errs


def qualified_name_errors(value: str) -> list[str]:
    prefix, _, name = value.rpartition("/")
    errs = []
    if "/" in value and not prefix:
        errs.append("prefix part must be non-empty")
    if prefix and dns1123_subdomain_errors(prefix):
        errs.append("prefix part " + dns1123_subdomain_errors(prefix)[-1])
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME.match(name):
        errs.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                    "with an alphanumeric character")
    return errs


def label_value_errors(value: str) -> list[str]:
    if len(value) > 63:
        return ["must be no more than 63 characters"]
    if not _LABEL_VALUE.match(value):
        return ["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character"]
    return []


def path_segment_errors(name: str) -> list[str]:
    """Names that only need to be one URL path segment (RBAC kinds: `system:basic-user`)."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def validate_metadata(meta: Any, *, namespaced: bool, name_is_label: bool = False,
                      name_is_path_segment: bool = False) -> list[Cause]:
    """All problems with an object's metadata (name already resolved from generateName)."""
    if not isinstance(meta, dict):
        return [Cause("metadata", "Required value", "FieldValueRequired")]
    causes = metadata_type_causes(meta)
    if causes:
        return causes
    name = meta.get("name")
    if not name:
        causes.append(Cause("metadata.name", "Required value: name or generateName is required", "FieldValueRequired"))
    elif not isinstance(name, str):
        causes.append(Cause("metadata.name", f"Invalid value: {name!r}: must be a string"))
    else:
        check = dns1123_label_errors if name_is_label else \
            path_segment_errors if name_is_path_segment else dns1123_subdomain_errors
        causes += [Cause("metadata.name", f'Invalid value: "{name}": {e}') for e in check(name)]
    for field_name in ("labels", "annotations"):
        value = meta.get(field_name)
        if value is None:
            continue
        if not isinstance(value, dict):
            causes.append(Cause(f"metadata.{field_name}", "Invalid value: must be a map of strings"))
            continue
        for k, v in value.items():
            causes += [Cause(f"metadata.{field_name}", f'Invalid value: "{k}": {e}') for e in qualified_name_errors(k)]
            if not isinstance(v, str):
                causes.append(Cause(f"metadata.{field_name}[{k}]", f"Invalid value: {v!r}: must be a string"))
            elif field_name == "labels":
                causes += [Cause(f"metadata.labels[{k}]", f'Invalid value: "{v}": {e}') for e in label_value_errors(v)]
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        size = sum(len(k) + len(v) for k, v in annotations.items() if isinstance(v, str))
        if size > _TOTAL_ANNOTATION_BYTES:
            causes.append(Cause("metadata.annotations", f"Too long: must have at most {_TOTAL_ANNOTATION_BYTES} bytes",
                                "FieldValueTooLong"))
    finalizers = meta.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
            causes.append(Cause("metadata.finalizers", "Invalid value: must be a list of strings"))
        else:
            for i, f in enumerate(finalizers):
                causes += [Cause(f"metadata.finalizers[{i}]", f'Invalid value: "{f}": {e}')
                           for e in qualified_name_errors(f)]
    owners = meta.get("ownerReferences")
    if owners is not None:
        if not isinstance(owners, list):
            causes.append(Cause("metadata.ownerReferences", "Invalid value: must be a list"))
        else:
            controllers = 0
            for i, ref in enumerate(owners):
                if not isinstance(ref, dict):
                    causes.append(Cause(f"metadata.ownerReferences[{i}]", "Invalid value: must be an object"))
                    continue
                for req in ("apiVersion", "kind", "name", "uid"):
                    if not ref.get(req):
                        causes.append(Cause(f"metadata.ownerReferences[{i}].{req}", "Required value", "FieldValueRequired"))
                controllers += bool(ref.get("controller"))
            if controllers > 1:
                causes.append(Cause("metadata.ownerReferences", "Invalid value: only one reference can have Controller set to true"))
    return causes
