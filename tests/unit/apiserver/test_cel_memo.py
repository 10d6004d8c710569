"""CEL verdicts remembered per input are the verdicts a fresh evaluation gives.

The API server remembers a rule's verdict keyed by the properties the evaluation read;
these cases vary exactly the properties a short-circuit skipped, so a wrong memo key
would show up as a wrong verdict."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.cel_rules import CelRules

PROPS = {k: {"type": "integer"} for k in ("a", "b", "c")} | {
    "items": {"type": "array", "items": {"type": "integer"}},
    "namespace": {"type": "string"},
    "m": {"type": "object", "additionalProperties": {"type": "string"}},
}

CASES: list[tuple[str, list[tuple[dict[str, Any], bool]]]] = [
    ("has(self.a) ? self.b > 1 : self.c > 1",
     [({"a": 1, "b": 2}, True), ({"a": 1, "b": 0}, False), ({"c": 0}, False), ({"c": 2}, True),
      ({"a": 5, "b": 2, "c": 0}, True), ({"b": 2, "c": 0}, False)]),
    ("self.a == 1 || self.b == 1",
     [({"a": 1, "b": 0}, True), ({"a": 0, "b": 0}, False), ({"a": 0, "b": 1}, True), ({"a": 1, "b": 5}, True)]),
    ("!(has(self.a) && has(self.b))",
     [({"a": 1}, True), ({"a": 1, "b": 1}, False), ({"b": 1}, True), ({"a": 2, "b": 3}, False)]),
    ("self.items.all(x, x > 0)",
     [({"items": [1, 2]}, True), ({"items": [1, 0]}, False), ({"items": [3]}, True)]),
    ("size(self.m) <= 1",
     [({"m": {"x": "1"}}, True), ({"m": {"x": "1", "y": "2"}}, False), ({"m": {}}, True)]),
    ("self.__namespace__ != 'kube-system'",
     [({"namespace": "a"}, True), ({"namespace": "kube-system"}, False)]),
]


@pytest.mark.parametrize(("rule", "samples"), CASES, ids=[c[0] for c in CASES])
def test_remembered_verdicts_match_fresh_evaluation(rule: str, samples: list[tuple[dict[str, Any], bool]]) -> None:
    schema = {"type": "object", "properties": PROPS, "x-kubernetes-validations": [{"rule": rule, "message": "no"}]}
    remembering = CelRules(schema)
    for _round in range(3):  # later rounds answer from the memo
        for obj, expected in samples:
            fresh = CelRules(schema)
            assert (not fresh.evaluate(obj, None)) is expected, (rule, obj)
            assert (not remembering.evaluate(obj, None)) is expected, (rule, obj, "memo")


def test_whole_value_rules_are_keyed_by_the_whole_value() -> None:
    schema = {"type": "string", "x-kubernetes-validations": [{"rule": "size(self) <= 3", "message": "long"}]}
    rules = CelRules(schema)
    for _ in range(2):
        assert not rules.evaluate("abc", None)  # type: ignore[arg-type]
        assert rules.evaluate("abcd", None)  # type: ignore[arg-type]


def _counting(rules: CelRules) -> list[int]:
    """Counts the evaluations of the (single) rule of `rules`' root."""
    assert rules.root is not None
    rule = rules.root.rules[0]
    calls = [0]
    program = rule.program

    class Counting:
        def evaluate(self, activation: Any, budget: Any = None) -> Any:
            calls[0] += 1
            return program.evaluate(activation, budget)

    rule.program = Counting()
    return calls


def test_a_presence_test_is_remembered_whatever_the_value() -> None:
    props = {"type": {"type": "string"}, "http": {"type": "object", "properties": {"url": {"type": "string"}}}}
    rule = "self.type == 'HTTP' ? has(self.http) : !has(self.http)"
    schema = {"type": "object", "properties": props, "x-kubernetes-validations": [{"rule": rule, "message": "no"}]}
    rules = CelRules(schema)
    calls = _counting(rules)
    for i in range(5):
        assert not rules.evaluate({"type": "HTTP", "http": {"url": f"http://x/{i}"}}, None)
    assert rules.evaluate({"type": "HTTP"}, None)
    assert rules.evaluate({"type": "Other", "http": {"url": "http://y"}}, None)
    assert calls[0] == 3, "one evaluation per (type, presence of http)"


@pytest.mark.parametrize("rule", ["has(self.a) && self.a > 0", "has(self.a) ? self.a > 0 : true"])
def test_a_property_also_read_for_its_value_is_keyed_by_its_value(rule: str) -> None:
    schema = {"type": "object", "properties": PROPS, "x-kubernetes-validations": [{"rule": rule, "message": "no"}]}
    rules = CelRules(schema)
    for _ in range(2):
        assert not rules.evaluate({"a": 1}, None)
        assert rules.evaluate({"a": -1}, None)
