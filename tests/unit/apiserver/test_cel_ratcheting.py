"""CEL rules on an update, as Kubernetes 1.33 runs them: a rule without `oldSelf` is ratcheted
(not run, so not failing) where the value is unchanged; transition rules always run; and
`self == oldSelf` passes on an unchanged value without an evaluation."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.cel_rules import CelRules

SPEC = {"type": "object", "properties": {"size": {"type": "integer"}, "on": {"type": "boolean"},
                                         "name": {"type": "string"}}}


def _schema(*rules: str) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "spec": {**SPEC, "x-kubernetes-validations": [{"rule": r, "message": r} for r in rules]},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}


def test_a_rule_failing_on_an_unchanged_value_is_ratcheted_on_update_only() -> None:
    rules = CelRules(_schema("self.size < 10"))
    old = {"spec": {"size": 20}, "status": {"phase": "A"}}
    assert [c.field for c in rules.evaluate(old, None)] == ["spec"], "a create runs every rule"
    assert not rules.evaluate({"spec": {"size": 20}, "status": {"phase": "B"}}, old), "spec unchanged: ratcheted"
    assert rules.evaluate({"spec": {"size": 21}, "status": {"phase": "B"}}, old), "spec changed: the rule runs"


def test_self_equals_old_self_holds_on_an_unchanged_value_and_fails_on_any_change() -> None:
    rules = CelRules(_schema("self == oldSelf"))
    old = {"spec": {"size": 1, "name": "a"}}
    assert not rules.evaluate({"spec": {"name": "a", "size": 1}}, old)
    assert rules.evaluate({"spec": {"size": 2, "name": "a"}}, old)
    assert rules.evaluate({"spec": {"size": 1, "name": "b"}}, old)


def test_true_is_not_taken_for_one() -> None:
    rules = CelRules(_schema("self.size < 10"))
    old = {"spec": {"size": 20}}
    # Python's == says {"size": True} == {"size": 1}: the comparison must be JSON's
    assert rules.evaluate({"spec": {"size": 20, "on": True}}, {"spec": {"size": 20, "on": 1}})
    assert not rules.evaluate({"spec": {"size": 20}}, old)


def test_transition_rules_run_on_unchanged_values() -> None:
    rules = CelRules(_schema("self.size == oldSelf.size && self.size < 10"))
    old = {"spec": {"size": 20}}
    assert rules.evaluate({"spec": {"size": 20}}, old), "a transition rule is not ratcheted"
    assert not rules.evaluate({"spec": {"size": 5}}, {"spec": {"size": 5}})
