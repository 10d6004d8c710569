"""`x-kubernetes-validations` CEL rules of a structural schema, compiled once, run per write.

Rules are evaluated with the `cel-python` package (`celpy`). As in Kubernetes, a rule sees
the value at its schema node as `self`; a transition rule (one that mentions `oldSelf`) runs
only on updates where the old object has a value at the same place; a rule whose node is
absent from the object is not run. Failures become `Cause`s with the rule's message (or
`messageExpression`), `fieldPath` and `reason`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

import celpy

from controlplane.apiserver.cel_values import K8S_FUNCTIONS, to_cel
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.fieldpath import field_path, json_type

log = logging.getLogger(__name__)

_env = celpy.Environment()


@dataclass
class _Rule:
    source: str
    program: Any
    message: str
    message_program: Any | None
    field_path: str
    reason: str
    transition: bool


@dataclass
class _Node:
    schema: dict[str, Any]
    rules: list[_Rule]
    properties: dict[str, _Node]
    items: _Node | None
    additional: _Node | None


def _compile(rule: dict[str, Any]) -> _Rule:
    src = rule["rule"]
    program = _env.program(_env.compile(src), functions=K8S_FUNCTIONS)
    msg_expr = rule.get("messageExpression")
    return _Rule(
        source=src,
        program=program,
        message=rule.get("message") or f"failed rule: {src}",
        message_program=_env.program(_env.compile(msg_expr), functions=K8S_FUNCTIONS) if msg_expr else None,
        field_path=rule.get("fieldPath", ""),
        reason=rule.get("reason", "FieldValueInvalid"),
        transition=re.search(r"\boldSelf\b", src) is not None,
    )


def _build(schema: dict[str, Any]) -> _Node | None:
    rules = [_compile(r) for r in schema.get("x-kubernetes-validations", [])]
    props = {k: n for k, sub in schema.get("properties", {}).items() if (n := _build(sub))}
    items = _build(schema["items"]) if isinstance(schema.get("items"), dict) else None
    addl = schema.get("additionalProperties")
    additional = _build(addl) if isinstance(addl, dict) else None
    if not (rules or props or items or additional):
        return None
    return _Node(schema, rules, props, items, additional)


class CelRules:
    """All CEL rules of one schema, as a tree that mirrors the schema's shape."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = _build(schema)

    @property
    def empty(self) -> bool:
        return self.root is None

    def evaluate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        if self.root is None:
            return []
        causes: list[Cause] = []
        self._walk(self.root, obj, old, [], causes)
        return causes

    def _walk(self, node: _Node, value: Any, old: Any, path: list[Any], causes: list[Cause]) -> None:
        for rule in node.rules:
            if rule.transition and old is None:
                continue
            self._run(rule, node.schema, value, old, path, causes)
        if isinstance(value, dict):
            for k, sub in node.properties.items():
                if k in value:
                    self._walk(sub, value[k], old.get(k) if isinstance(old, dict) else None, [*path, k], causes)
            if node.additional is not None:
                for k, v in value.items():
                    if k not in node.properties:
                        self._walk(node.additional, v, old.get(k) if isinstance(old, dict) else None,
                                   [*path, k], causes)
        elif isinstance(value, list) and node.items is not None:
            for i, v in enumerate(value):
                self._walk(node.items, v, None, [*path, i], causes)

    def _run(self, rule: _Rule, schema: dict[str, Any], value: Any, old: Any, path: list[Any],
             causes: list[Cause]) -> None:
        activation: dict[str, Any] = {"self": to_cel(schema, value)}
        if rule.transition:
            activation["oldSelf"] = to_cel(schema, old)
        try:
            result = rule.program.evaluate(activation)
        except Exception as exc:  # celpy raises for type errors and missing keys
            result = exc
        if result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            return
        message = rule.message
        if isinstance(result, (Exception, celpy.CELEvalError)):
            message = f"{rule.message} (rule could not be evaluated: {result})"
        elif rule.message_program is not None:
            with contextlib.suppress(Exception):  # keep the static message if it fails
                message = str(rule.message_program.evaluate(activation))
        where = field_path(path)
        if rule.field_path:
            where = (where + rule.field_path) if rule.field_path.startswith("[") else f"{where}{rule.field_path}"
        causes.append(Cause(where.lstrip("."), f'Invalid value: "{json_type(value)}": {message}', rule.reason))
