"""Checks that the shipped CRDs are what a real kube-apiserver accepts and enforces.

Test-only helpers used by ``test_crds.py`` and ``test_crd_cel.py``:

- :func:`structural_violations`: the structural-schema rules of apiextensions.k8s.io/v1
  (every node typed, junctors only restate declared fields and carry no type/default/...,
  metadata restricted, known keywords only, valid int-or-string forms, valid defaults);
- :func:`field_errors`: OpenAPI validation with the ``jsonschema`` library, reported with
  Kubernetes-style field paths (``spec.cpu.cores``, ``spec.blockDeviceRefs[0].kind``);
- :func:`apply_defaults`: structural defaulting as the API server does before validating;
- :func:`cel_sites` / :func:`evaluate_rule`: the ``x-kubernetes-validations`` rules with
  their ``self`` (and ``oldSelf``) values, evaluated with cel-python, with Kubernetes'
  property-name escaping and the Kubernetes CEL library functions cel-python lacks.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import celpy
import jsonschema
from celpy.evaluation import CELEvalError

from controlplane.apiserver.cel_values import CEL_RESERVED, escape_property, to_cel  # noqa: F401
from controlplane.apiserver.cel_values import K8S_FUNCTIONS as K8S_CEL_FUNCTIONS

Schema = dict[str, Any]

# JSONSchemaProps fields of apiextensions.k8s.io/v1; anything else is rejected by strict decoding.
KNOWN_KEYWORDS = frozenset({
    "id", "$schema", "$ref", "description", "type", "format", "title", "default", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
    "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties",
    "minProperties", "required", "items", "allOf", "oneOf", "anyOf", "not", "properties",
    "additionalProperties", "patternProperties", "dependencies", "additionalItems",
    "definitions", "externalDocs", "example", "nullable", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
})
# Allowed by JSONSchemaProps but refused in CRD schemas by the API server.
FORBIDDEN_KEYWORDS = frozenset({"$ref", "definitions", "dependencies", "patternProperties",
                                "additionalItems", "id", "$schema"})
JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
NOT_IN_JUNCTORS = ("description", "type", "default", "additionalProperties", "nullable")
TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})
INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]
RULE_FIELDS = frozenset({"rule", "message", "messageExpression", "reason", "fieldPath", "optionalOldSelf"})
COLUMN_TYPES = frozenset({"integer", "number", "string", "boolean", "date"})


def structural_violations(schema: Schema) -> list[str]:
    """Every way ``schema`` (an openAPIV3Schema) breaks the structural-schema rules."""
    out: list[str] = []
    if schema.get("type") != "object":
        out.append("<root>: type must be object")
    _check_node(schema, "<root>", out, in_junctor=False)
    meta = schema.get("properties", {}).get("metadata")
    if meta is not None:
        extra = set(meta) - {"type", "description", "properties"}
        extra |= set(meta.get("properties", {})) - {"name", "generateName"}
        if extra:
            out.append(f"metadata: only name/generateName may be restricted, found {sorted(extra)}")
    return out


def _check_node(node: Any, path: str, out: list[str], *, in_junctor: bool) -> None:
    if not isinstance(node, dict):
        out.append(f"{path}: schema must be an object, got {type(node).__name__}")
        return
    for key in node:
        if key not in KNOWN_KEYWORDS:
            out.append(f"{path}: unknown keyword {key!r}")
        elif key in FORBIDDEN_KEYWORDS:
            out.append(f"{path}: keyword {key!r} is not allowed in CRD schemas")
    if node.get("uniqueItems") is True:
        out.append(f"{path}: uniqueItems: true is not allowed")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    if in_junctor:
        for key in NOT_IN_JUNCTORS:
            if key in node:
                out.append(f"{path}: {key!r} is not allowed inside allOf/anyOf/oneOf/not")
    elif int_or_string:
        if "type" in node:
            out.append(f"{path}: x-kubernetes-int-or-string must not set type")
        if "anyOf" in node and node["anyOf"] != INT_OR_STRING_ANYOF:
            out.append(f"{path}: int-or-string anyOf must be [integer, string]")
    elif node.get("type") not in TYPES and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.append(f"{path}: missing or invalid type {node.get('type')!r}")
    if "properties" in node and "additionalProperties" in node:
        out.append(f"{path}: properties and additionalProperties are mutually exclusive")
    if "items" in node and not isinstance(node["items"], dict):
        out.append(f"{path}: items must be a single schema")
    if "type" in node and not in_junctor and "enum" in node:
        for value in node["enum"]:
            if not _value_matches_type(value, node["type"]):
                out.append(f"{path}: enum value {value!r} is not of type {node['type']}")
    for i, rule in enumerate(node.get("x-kubernetes-validations", [])):
        if not isinstance(rule, dict) or not isinstance(rule.get("rule"), str) or set(rule) - RULE_FIELDS:
            out.append(f"{path}: x-kubernetes-validations[{i}] must have a string rule and known fields")
    if "default" in node and not in_junctor:
        errors = field_errors(_without_defaults(node), copy.deepcopy(node["default"]))
        out.extend(f"{path}: default is invalid: {p or '<value>'}: {m}" for p, m in errors)
    for name, child in node.get("properties", {}).items():
        _check_node(child, f"{path}.{name}", out, in_junctor=in_junctor)
    if isinstance(node.get("items"), dict):
        _check_node(node["items"], f"{path}[]", out, in_junctor=in_junctor)
    if isinstance(node.get("additionalProperties"), dict):
        _check_node(node["additionalProperties"], f"{path}{{}}", out, in_junctor=in_junctor)
    if int_or_string and not in_junctor:
        return  # the anyOf of int-or-string is the one allowed typed junctor
    for junctor in JUNCTORS:
        branches = node.get(junctor)
        if branches is None:
            continue
        for i, branch in enumerate(branches if isinstance(branches, list) else [branches]):
            bpath = f"{path}.{junctor}[{i}]"
            _check_node(branch, bpath, out, in_junctor=True)
            _check_junctor_restates(branch, node, bpath, out)


def _check_junctor_restates(branch: Schema, outer: Schema, path: str, out: list[str]) -> None:
    """Fields and items used in a junctor must also be declared outside it."""
    for name in branch.get("properties", {}):
        if name not in outer.get("properties", {}):
            out.append(f"{path}: field {name!r} is not declared outside the junctor")
    if "items" in branch and "items" not in outer:
        out.append(f"{path}: items are not declared outside the junctor")


def _value_matches_type(value: Any, type_: str) -> bool:
    checks = {"string": lambda v: isinstance(v, str),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
              "boolean": lambda v: isinstance(v, bool),
              "object": lambda v: isinstance(v, dict),
              "array": lambda v: isinstance(v, list)}
    return checks[type_](value)


def _without_defaults(node: Schema) -> Schema:
    return {k: v for k, v in node.items() if k != "default"}


def printer_column_problems(crd: dict[str, Any]) -> list[str]:
    """Printer columns that a real server would refuse or that point at no schema field."""
    out: list[str] = []
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        for col in version.get("additionalPrinterColumns", []):
            if set(col) - {"name", "type", "jsonPath", "priority", "description", "format"}:
                out.append(f"{col.get('name')}: unknown column fields")
            if col.get("type") not in COLUMN_TYPES:
                out.append(f"{col.get('name')}: invalid column type {col.get('type')!r}")
            if not _json_path_resolves(schema, col.get("jsonPath", "")):
                out.append(f"{col.get('name')}: jsonPath {col.get('jsonPath')!r} matches no schema field")
    return out


_PATH_TOKEN = re.compile(r"\.((?:\\.|[^.\[\\])+)|\[\?\(.*?\)\]|\[\d+\]")


def _json_path_resolves(schema: Schema, json_path: str) -> bool:
    """True when a simple kubectl JSONPath (fields, [n], [?(...)] filters) names a schema node."""
    node, pos = schema, 0
    while pos < len(json_path):
        m = _PATH_TOKEN.match(json_path, pos)
        if not m:
            return False
        pos = m.end()
        if m.group(1) is None:  # an index or a filter selects list items
            if node.get("type") != "array":
                return False
            node = node["items"]
            continue
        name = m.group(1).replace("\\", "")
        if node.get("type") == "array":
            node = node["items"]
        if name in node.get("properties", {}):
            node = node["properties"][name]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            # ObjectMeta and free-form nodes are not described in the CRD; anything else is a typo.
            return node is schema["properties"].get("metadata") or bool(
                node.get("x-kubernetes-preserve-unknown-fields"))
    return True


# --- validation with Kubernetes-style field paths ------------------------------------------

def k8s_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_errors(schema: Schema, obj: Any) -> list[tuple[str, str]]:
    """(field path, message) for each OpenAPI violation, sorted, as the API server words paths."""
    validator = jsonschema.Draft4Validator(schema)
    out = []
    for err in validator.iter_errors(obj):
        parts = list(err.absolute_path)
        if err.validator == "required":
            missing = [r for r in err.validator_value if isinstance(err.instance, dict) and r not in err.instance]
            parts += missing[:1]
        out.append((k8s_path(parts), err.message))
    return sorted(out)


def apply_defaults(schema: Schema, obj: Any) -> Any:
    """A copy of ``obj`` with schema defaults filled in where the parent object exists."""
    obj = copy.deepcopy(obj)
    _default_into(schema, obj)
    return obj


def _default_into(node: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, child in node.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                _default_into(child, value[name])
        if isinstance(node.get("additionalProperties"), dict):
            for item in value.values():
                _default_into(node["additionalProperties"], item)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _default_into(node["items"], item)


# --- CEL --------------------------------------------------------------------------------------



@functools.cache
def compile_rule(rule: str) -> Any:
    """The parsed rule (raises celpy.celparser.CELParseError when it does not compile)."""
    return celpy.Environment().compile(rule)


def evaluate_rule(rule: str, schema: Schema, value: Any, old: Any = None, *,
                  k8s_functions: bool = True) -> bool:
    """Verdict of one rule on ``value`` (and ``old`` for transition rules).

    An evaluation error counts as a failed rule, as in Kubernetes.
    """
    functions = K8S_CEL_FUNCTIONS if k8s_functions else None
    program = celpy.Environment().program(compile_rule(rule), functions=functions)
    activation = {"self": to_cel(schema, value)}
    if old is not None:
        activation["oldSelf"] = to_cel(schema, old)
    result = program.evaluate(activation)
    if isinstance(result, CELEvalError):
        raise result
    return bool(result)


@dataclass(frozen=True)
class CelSite:
    path: str
    rule: str
    message: str
    schema: Schema
    value: Any
    old: Any


def is_transition_rule(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


def cel_sites(schema: Schema, obj: Any, old: Any = None, path: str = "") -> Iterator[CelSite]:
    """Each rule with the value it applies to in ``obj``; transition rules only with an old value."""
    for entry in schema.get("x-kubernetes-validations", []):
        if is_transition_rule(entry["rule"]) and old is None:
            continue
        yield CelSite(path, entry["rule"], entry.get("message", ""), schema, obj, old)
    if isinstance(obj, dict):
        for name, child in schema.get("properties", {}).items():
            if name in obj:
                sub_old = old.get(name) if isinstance(old, dict) else None
                yield from cel_sites(child, obj[name], sub_old, f"{path}.{name}" if path else name)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            yield from cel_sites(schema["items"], item, None, f"{path}[{i}]")


def cel_violations(schema: Schema, obj: Any, old: Any = None) -> list[tuple[str, str]]:
    """(path, message) of every rule that fails (or errors) on ``obj``."""
    out = []
    for site in cel_sites(schema, obj, old):
        try:
            ok = evaluate_rule(site.rule, site.schema, site.value, site.old)
        except CELEvalError:
            ok = False
        if not ok:
            out.append((site.path, site.message))
    return out


def all_rules(schema: Schema, path: str = "") -> Iterator[tuple[str, str, str, Schema]]:
    """(schema path, rule, message, node) for every rule; ``[]`` marks list items."""
    for entry in schema.get("x-kubernetes-validations", []):
        yield path, entry["rule"], entry.get("message", ""), schema
    for name, child in schema.get("properties", {}).items():
        yield from all_rules(child, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from all_rules(schema["items"], f"{path}[]")


def schema_at(schema: Schema, path: str) -> Schema:
    """The node at a dotted schema path (``[]`` steps into list items)."""
    node = schema
    for part in filter(None, re.split(r"\.|(?=\[\])", path)):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node
