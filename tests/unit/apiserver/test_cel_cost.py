"""The cost budget of a write's CEL rules: a rule over a long list runs out of it and the write
gets kube's cause naming the field, no later rule runs; DVP's own worst case fits in it."""

from __future__ import annotations

import copy
from typing import Any

from controlplane.api.crds import crds_by_kind, served_schema
from controlplane.apiserver.cel_cost import OUT_OF_BUDGET, REQUEST_BUDGET, Budget
from controlplane.apiserver.cel_rules import CelRules
from tests.unit.test_vm_pool_crd import POOL

NESTED = "self.all(x, self.all(y, x == y || x != y))"


def tags_schema(*rules: dict[str, str], message_rule: dict[str, str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": list(rules)},
        "name": {"type": "string", "x-kubernetes-validations": [message_rule or {"rule": "self != 'bad'"}]}}}


def tags(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_a_rule_over_a_long_list_runs_out_of_the_budget_and_names_the_field() -> None:
    rules = CelRules(tags_schema({"rule": NESTED}))
    causes = rules.evaluate({"tags": tags(2000), "name": "bad"}, None)
    # the walk stops there: the `name` rule after it (which this object breaks) is not run
    assert [(c.field, c.message) for c in causes] == [("tags", f'Invalid value: "array": {OUT_OF_BUDGET}')]


def test_the_same_rule_over_a_short_list_is_run_and_spends_from_the_budget() -> None:
    rules = CelRules(tags_schema({"rule": NESTED}))
    budget = Budget()
    assert rules.evaluate({"tags": tags(10), "name": "bad"}, None, budget)[0].field == "name"
    assert 0 < REQUEST_BUDGET - budget.left < REQUEST_BUDGET // 10


def test_each_write_has_a_budget_of_its_own() -> None:
    rules = CelRules(tags_schema({"rule": NESTED}))
    spent = Budget(REQUEST_BUDGET)
    rules.evaluate({"tags": tags(30)}, None, spent)
    used = REQUEST_BUDGET - spent.left
    # enough for one such write, not for two (other values: no remembered verdict spares the cost)
    two = Budget(used + used // 2)
    assert rules.evaluate({"tags": tags(30, "a")}, None, two) == []
    assert rules.evaluate({"tags": tags(30, "b")}, None, two)[0].message.endswith(OUT_OF_BUDGET)
    assert rules.evaluate({"tags": tags(30, "c")}, None) == []  # a fresh write, a fresh budget


def test_a_verdict_cut_short_is_not_remembered() -> None:
    rules = CelRules(tags_schema({"rule": "self.all(x, self.all(y, x != y || x == 'dup'))"}))
    obj = {"tags": tags(40)}
    assert rules.evaluate(obj, None, Budget(500))[0].message.endswith(OUT_OF_BUDGET)
    # the memo has no verdict for this object: with the full budget the rule runs and fails for real
    obj["tags"][1] = obj["tags"][0]
    assert "failed rule" in rules.evaluate(obj, None)[0].message


def test_a_message_expression_spends_from_the_same_budget() -> None:
    rules = CelRules(tags_schema(message_rule={
        "rule": "self != 'bad'", "messageExpression": "'bad: ' + [1, 2, 3, 4, 5, 6, 7, 8].map(i, string(i))[7]"}))
    assert rules.evaluate({"name": "bad"}, None)[0].message.endswith("bad: 8")
    starved = rules.evaluate({"name": "bad"}, None, Budget(30))
    assert [(c.field, c.message) for c in starved] == [("name", f'Invalid value: "string": {OUT_OF_BUDGET}')]


def test_a_virtual_machine_pool_at_its_lists_max_items_fits_in_the_budget() -> None:
    rules = CelRules(served_schema(crds_by_kind()["VirtualMachinePool"]))
    pool = copy.deepcopy(POOL)
    pool["spec"]["virtualDiskTemplates"] = [{"name": f"d{i}", "spec": {}} for i in range(16)]
    pool["spec"]["virtualMachineTemplate"]["spec"]["blockDeviceRefs"] = [
        {"kind": "VirtualDisk", "name": f"d{i}"} for i in range(16)]
    budget = Budget()
    assert rules.evaluate(pool, None, budget) == []
    assert REQUEST_BUDGET - budget.left < REQUEST_BUDGET // 5


def test_an_operation_whose_cost_grows_with_the_data_is_stopped_by_the_cpu_backstop() -> None:
    """`self + self` copies the list at each of its elements: few nodes, much work. With every
    node it wants, the rule is still stopped once the write's rules have had their CPU time."""
    rules = CelRules(tags_schema({"rule": "self.map(x, self + self).size() > 0"}))
    assert rules.evaluate({"tags": tags(50)}, None, Budget(10**12, cpu_seconds=1.0)) == []
    causes = rules.evaluate({"tags": tags(5000)}, None, Budget(10**12, cpu_seconds=0.05))
    assert [(c.field, c.message) for c in causes] == [("tags", f'Invalid value: "array": {OUT_OF_BUDGET}')]
