"""The cost budget of the CEL rules one write runs, as kube-apiserver's runtime cost limit.

cel-python interprets each evaluation (a rule, and each element a macro such as `all` or
`exists` visits): a rule nesting two macros over one list costs the square of its length, and
nothing but the CRD's `maxItems` bounded it. kube-apiserver refuses such a CRD when it
estimates the cost and stops any evaluation that runs out of its budget; here the CRD is taken
and a write whose rules run out of the budget is refused (422, the field named, kube's
words), so one object can hold a worker thread for a second or two at most, not for minutes.

The unit is a syntax-tree node of a rule or of a macro's body, counted once per evaluation of
it: close to kube's cost units (one per operation), and like them it does not depend on how
busy the machine is, so a write is refused or taken the same way every time. What the nodes do
not see (an operation whose cost grows with its data) is bounded by the CPU time the rules of
one write may take (`CPU_SECONDS`), checked at each evaluation.
"""

from __future__ import annotations

import time
from typing import Any

import celpy
from celpy.evaluation import Activation, Evaluator

REQUEST_BUDGET = 200_000
"""Nodes the rules of one write may evaluate: about 1.5 s of one core here (140,000 nodes/s),
where kube's budget of 10,000,000 units takes about a tenth of a second in Go. A
VirtualMachinePool at its lists' `maxItems` (16 disk templates, 16 references) spends 19,000."""

CPU_SECONDS = 3.0
"""The backstop: the CPU time (of the evaluating thread, so not the time it waits for others)
the rules of one write may take whatever their nodes. An operation's cost can grow with the
data it works on, which nodes do not count: `self.map(x, self + self)` copies the list at each
element (8,000 strings took 3.7 s within 40,000 nodes)."""

OUT_OF_BUDGET = "validation failed due to running out of cost budget, no further validation rules will be run"
"""kube-apiserver's message for a write whose rules ran out of the budget."""


class BudgetExceeded(Exception):  # noqa: N818 - the name says what happened, as CELEvalError's does
    """A rule's evaluation ran out of the write's budget (not a CEL error: no rule catches it)."""


class Budget:
    """What is left of one write's budget, spent by every evaluation of its rules; made in the
    thread that evaluates them."""

    def __init__(self, limit: int = REQUEST_BUDGET, cpu_seconds: float = CPU_SECONDS) -> None:
        self.left = limit
        self._until = time.thread_time() + cpu_seconds

    def spend(self, cost: int) -> None:
        self.left -= cost
        if self.left < 0 or time.thread_time() > self._until:
            raise BudgetExceeded(OUT_OF_BUDGET)


def _nodes(ast: Any) -> int:
    """The nodes of a (sub)tree, counted once and kept on it: counting them each time cost 7% of
    a small rule's evaluation."""
    nodes: int | None = getattr(ast, "cost_nodes", None)
    if nodes is None:
        nodes = sum(1 for _ in ast.iter_subtrees())
        ast.cost_nodes = nodes  # a lark Tree takes attributes; a race only counts twice
    return nodes


class _CostedEvaluator(Evaluator):
    """cel-python's evaluator, paying for each evaluation of its tree (and of its macros' bodies,
    through the sub-evaluators it makes) before it runs."""

    def __init__(self, ast: Any, activation: Activation, budget: Budget) -> None:
        super().__init__(ast, activation)
        self.budget = budget
        self.cost = _nodes(ast)

    def sub_evaluator(self, ast: Any) -> Evaluator:
        return _CostedEvaluator(ast, self.activation, self.budget)

    def evaluate(self, context: Any = None) -> Any:
        self.budget.spend(self.cost)
        return super().evaluate(context)


class CostedRunner(celpy.InterpretedRunner):
    """The runner of a compiled rule: `evaluate(context, budget)` spends from `budget`."""

    def evaluate(self, context: Any, budget: Budget | None = None) -> Any:
        spent_from = budget if budget is not None else Budget(int(1e18))
        return _CostedEvaluator(self.ast, self.new_activation(), spent_from).evaluate(context)
