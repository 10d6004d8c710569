"""Which nodes may run a VM: node selectors (matchLabels / matchExpressions, plain maps),
tolerations against taints, and free CPU and memory. Shared by the class controller (its
available nodes) and the VM controller (placing a VM)."""

from __future__ import annotations

from typing import Any

from controlplane.api.internal import NodeCondition
from controlplane.api.resources import KVM_LABEL
from controlplane.common import quantity

HEALTH_CONDITIONS = (NodeCondition.CLOCK_SYNCHRONIZED, NodeCondition.DVCR_ACCESS)
"""Node conditions that keep new VMs away while False (True or absent: nothing known against it)."""


def matches_selector(labels: dict[str, str], selector: dict[str, Any] | None) -> bool:
    """A LabelSelector ({matchLabels, matchExpressions}) or a plain label map."""
    if not selector:
        return True
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def tolerates(taints: list[dict[str, Any]], tolerations: list[dict[str, Any]]) -> bool:
    for taint in taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates_one(taint, t) for t in tolerations):
            return False
    return True


def _tolerates_one(taint: dict[str, Any], tol: dict[str, Any]) -> bool:
    if tol.get("effect") and tol.get("effect") != taint.get("effect"):
        return False
    if tol.get("operator") == "Exists":
        return not tol.get("key") or tol.get("key") == taint.get("key")
    return bool(tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""))


def node_ready(node: dict[str, Any]) -> bool:
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def node_healthy(node: dict[str, Any]) -> bool:
    """Ready, and no health condition (clock, DVCR access) False."""
    conds = (node.get("status") or {}).get("conditions") or []
    return node_ready(node) and not any(c.get("type") in HEALTH_CONDITIONS and c.get("status") == "False"
                                        for c in conds)


def node_labels(node: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = (node.get("metadata") or {}).get("labels") or {}
    return labels


def eligible(node: dict[str, Any], *, selectors: list[dict[str, Any] | None],
             tolerations: list[dict[str, Any]]) -> bool:
    """Node is Ready and healthy, schedulable, matches every selector and its taints are tolerated."""
    if not node_healthy(node) or (node.get("spec") or {}).get("unschedulable"):
        return False
    labels = node_labels(node)
    if not all(matches_selector(labels, s) for s in selectors):
        return False
    return tolerates((node.get("spec") or {}).get("taints") or [], tolerations)


def allocatable(node: dict[str, Any]) -> tuple[float, int]:
    """(CPU cores, memory bytes) the node offers to VMs."""
    alloc = (node.get("status") or {}).get("allocatable") or {}
    return float(quantity.parse(alloc.get("cpu", "0"))), quantity.to_bytes(alloc.get("memory", "0"))


def has_kvm(node: dict[str, Any]) -> bool:
    return node_labels(node).get(KVM_LABEL) == "true"


def placement_changed(node: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Whether a Node event can change where VMs may run: readiness and health, labels, spec (taints,
    unschedulable) or allocatable — not the heartbeats a node handler renews every few seconds,
    which would otherwise wake every unplaced VM and every class each time."""
    if old is None:
        return True
    return (node_healthy(node) != node_healthy(old)
            or node["metadata"].get("labels") != old["metadata"].get("labels")
            or node.get("spec") != old.get("spec")
            or (node.get("status") or {}).get("allocatable") != (old.get("status") or {}).get("allocatable"))
