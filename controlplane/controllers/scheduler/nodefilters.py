"""Per-node predicates of the VM scheduler, each returning None (the node passes) or the
reason it refuses, worded as kube-scheduler words it so the VM's message reads like a Pod's
("node(s) were unschedulable", "node(s) didn't match Pod's node affinity/selector").

A node passes when it is Ready, no health condition the node handler or the node lifecycle
controller reports is False (clock skew, DVCR access), it is not cordoned
(`spec.unschedulable`, what `kubectl cordon` sets), the VM tolerates its NoSchedule/NoExecute
taints, and its labels match the class's and the VM's `nodeSelector` and one of the VM's
required node affinity terms (`matchExpressions` with In/NotIn/Exists/DoesNotExist/Gt/Lt,
`matchFields` on `metadata.name`)."""

from __future__ import annotations

from typing import Any

from controlplane.api.internal import NodeCondition
from controlplane.controllers import scheduling

NOT_READY = "node(s) were not ready"
UNHEALTHY = "node(s) reported a problem"
UNSCHEDULABLE = "node(s) were unschedulable"
SELECTOR = "node(s) didn't match Pod's node affinity/selector"

HEALTH_CONDITIONS = scheduling.HEALTH_CONDITIONS


def _conditions(node: dict[str, Any]) -> list[dict[str, Any]]:
    conds: list[dict[str, Any]] = (node.get("status") or {}).get("conditions") or []
    return conds


def health_problem(node: dict[str, Any]) -> str | None:
    """Why a node may not run new VMs although it is there: not Ready, or a health condition False."""
    ready = next((c for c in _conditions(node) if c.get("type") == NodeCondition.READY), None)
    if ready is None or ready.get("status") != "True":
        return NOT_READY
    for c in _conditions(node):
        if c.get("type") in HEALTH_CONDITIONS and c.get("status") == "False":
            return UNHEALTHY
    return None


def health_detail(node: dict[str, Any]) -> str:
    """The node's failing conditions as `Type=Status (Reason: message)`, for the VM's message."""
    parts = []
    for c in _conditions(node):
        bad = (c.get("type") == NodeCondition.READY and c.get("status") != "True") or \
            (c.get("type") in HEALTH_CONDITIONS and c.get("status") == "False")
        if bad:
            parts.append(f"{c.get('type')}={c.get('status')} ({c.get('reason', '')}: {c.get('message', '')})")
    return "; ".join(parts) or "no Ready condition"


def _requirement(value: str | None, op: str, values: list[str]) -> bool:
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        try:
            have, want = int(value or ""), int(values[0])
        except (ValueError, IndexError):
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(node: dict[str, Any], term: dict[str, Any]) -> bool:
    """A NodeSelectorTerm: every expression and field requirement holds (an empty term matches nothing)."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = scheduling.node_labels(node)
    name = (node.get("metadata") or {}).get("name")
    return (all(_requirement(labels.get(e.get("key", "")), e.get("operator", ""), e.get("values") or [])
                for e in exprs)
            and all(_requirement(name if f.get("key") == "metadata.name" else None, f.get("operator", ""),
                                 f.get("values") or []) for f in fields))


def node_affinity(spec: dict[str, Any]) -> dict[str, Any]:
    affinity: dict[str, Any] = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    return affinity


def required_terms(spec: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The VM's required node affinity terms (ORed), or None when it has none."""
    required = node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return None
    terms: list[dict[str, Any]] = required.get("nodeSelectorTerms") or []
    return terms


def untolerated_taint(node: dict[str, Any], tolerations: list[dict[str, Any]]) -> dict[str, Any] | None:
    for taint in (node.get("spec") or {}).get("taints") or []:
        if not scheduling.tolerates([taint], tolerations):
            result: dict[str, Any] = taint
            return result
    return None


def refusal(node: dict[str, Any], *, selectors: list[dict[str, Any] | None], terms: list[dict[str, Any]] | None,
            tolerations: list[dict[str, Any]]) -> str | None:
    """Why `node` cannot run the VM whatever its load, or None."""
    problem = health_problem(node)
    if problem:
        return problem
    if (node.get("spec") or {}).get("unschedulable"):
        return UNSCHEDULABLE
    taint = untolerated_taint(node, tolerations)
    if taint is not None:
        value = f": {taint['value']}" if taint.get("value") else ""
        return f"node(s) had untolerated taint {{{taint.get('key', '')}{value}}}"
    labels = scheduling.node_labels(node)
    if not all(scheduling.matches_selector(labels, s) for s in selectors):
        return SELECTOR
    if terms is not None and not any(term_matches(node, t) for t in terms):
        return SELECTOR
    return None


def preferred_score(node: dict[str, Any], spec: dict[str, Any]) -> int:
    """Sum of the weights of the VM's preferred node affinity terms the node matches."""
    total = 0
    for pref in node_affinity(spec).get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if term_matches(node, pref.get("preference") or {}):
            total += int(pref.get("weight") or 0)
    return total
