"""`fieldValidation=Strict|Warn|Ignore`: what to do with fields the kind doesn't declare
and with fields a JSON or YAML body sets twice.

kube-apiserver's default when the parameter is absent is `Warn` (kubectl ≥ 1.27 sends
`Strict` by default, older clients nothing). `Strict` answers 400 as kube-apiserver does
("VirtualMachine in version "v1alpha2" cannot be handled as a VirtualMachine: strict
decoding error: unknown field "spec.foo""), `Warn` returns each finding as a `Warning: 299`
header, `Ignore` prunes silently. Unknown fields are found against the structural schema,
honouring `x-kubernetes-preserve-unknown-fields` and embedded resources; pruning itself
stays in `schema.py`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from controlplane.apiserver import errors
from controlplane.apiserver.fieldpath import field_path
from controlplane.apiserver.schema import META_FIELDS

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
DIRECTIVES = ("", IGNORE, WARN, STRICT)


def directive(value: str, *, options_kind: str = "PatchOptions") -> str:
    if value not in DIRECTIVES:
        raise errors.invalid(options_kind, "meta.k8s.io", "", [errors.Cause(
            "fieldValidation", f'Unsupported value: "{value}": supported values: "", "Ignore", "Warn", "Strict"',
            "FieldValueNotSupported")])
    return value or WARN


def unknown_fields(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Paths (`spec.foo`, `spec.disks[0].bar`) of the fields pruning would drop."""
    out: list[str] = []
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        out += [f"metadata.{k}" for k in meta if k not in META_FIELDS]
    props = schema.get("properties", {})
    for k, v in obj.items():
        if k in ("apiVersion", "kind", "metadata"):
            continue
        if k in props:
            _walk(v, props[k], [k], out)
        elif not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.append(k)
    return out


def _walk(v: Any, s: dict[str, Any], path: list[Any], out: list[str]) -> None:
    if isinstance(v, dict):
        if s.get("x-kubernetes-preserve-unknown-fields") and "properties" not in s:
            return
        keep = {"apiVersion", "kind", "metadata"} if s.get("x-kubernetes-embedded-resource") else set()
        props = s.get("properties")
        addl = s.get("additionalProperties")
        for k, sub in v.items():
            if props is not None and k in props:
                _walk(sub, props[k], [*path, k], out)
            elif isinstance(addl, dict):
                _walk(sub, addl, [*path, k], out)
            elif k not in keep and not addl and not s.get("x-kubernetes-preserve-unknown-fields") \
                    and (props is not None or s.get("type") == "object"):
                out.append(field_path([*path, k]))
    elif isinstance(v, list) and isinstance(s.get("items"), dict):
        for i, item in enumerate(v):
            _walk(item, s["items"], [*path, i], out)


# -- duplicate fields in a body -----------------------------------------------------------------
class _Mapping(dict[Any, Any]):
    """A decoded object that remembers which of its keys the body set more than once."""

    dups: list[str]


def _pairs(pairs: list[tuple[Any, Any]]) -> _Mapping:
    out = _Mapping()
    out.dups = []
    for k, v in pairs:
        if not isinstance(k, (str, int, float, bool)) and k is not None:
            raise ValueError(f"mapping keys must be strings, not {type(k).__name__}")
        if k in out and str(k) not in out.dups:
            out.dups.append(str(k))
        out[k] = v
    return out


def _clean(v: Any, path: list[Any], found: list[str]) -> Any:
    """Plain dicts again, with the paths of the duplicated keys collected (`spec.x`)."""
    if isinstance(v, dict):
        found.extend(field_path([*path, k]) for k in getattr(v, "dups", ()))
        return {k: _clean(sub, [*path, k], found) for k, sub in v.items()}
    if isinstance(v, list):
        return [_clean(item, [*path, i], found) for i, item in enumerate(v)]
    return v


def json_load(raw: bytes) -> tuple[Any, list[str]]:
    """A JSON document and the paths of the fields it sets twice (kube: `duplicate field "x"`)."""
    found: list[str] = []
    return _clean(json.loads(raw, object_pairs_hook=_pairs), [], found), found


class _Repeated(Exception):
    """A JSON object of the body sets one key twice (stops the quick scan)."""


def _plain_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Repeated
    return out


def json_duplicates(raw: bytes) -> list[str]:
    """The paths of the fields a JSON document sets twice: a quick scan (one `dict` per object,
    no paths kept) finds that there are none, as in almost every body; only a body with some
    is read again by `json_load` to name them. Every write's body goes through this."""
    try:
        json.loads(raw, object_pairs_hook=_plain_pairs)
    except _Repeated:
        return json_load(raw)[1]
    return []


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present


class _DuplicateKeyLoader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader noting duplicate keys; timestamps stay strings, as in Kubernetes' YAML."""


_DuplicateKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _DuplicateKeyLoader, node: yaml.MappingNode, deep: bool = False) -> _Mapping:
    loader.flatten_mapping(node)
    return _pairs([(loader.construct_object(k, deep=True), loader.construct_object(v, deep=True))
                   for k, v in node.value])


_DuplicateKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def yaml_load(raw: bytes) -> tuple[Any, list[str]]:
    """A YAML document and the paths of the fields it sets twice."""
    loader = _DuplicateKeyLoader(raw)
    try:
        found: list[str] = []
        return _clean(loader.get_single_data(), [], found), found
    finally:
        loader.dispose()


def report(kind: str, version: str, findings: list[str], mode: str, warnings: list[str]) -> None:
    """Act on `findings` (`unknown field "spec.foo"`, ...) as the directive says."""
    if not findings or mode == IGNORE:
        return
    if mode == STRICT:
        raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding '
                                 f"error: {', '.join(findings)}")
    warnings.extend(findings)
