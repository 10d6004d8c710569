"""Taints that follow a Node's state, as kube-controller-manager's node lifecycle controller
sets them (TaintNodesByCondition): `node.kubernetes.io/unreachable` while Ready is Unknown (its
node handler stopped renewing the Lease), `node.kubernetes.io/not-ready` while Ready is False
(e.g. libvirt down), `node.kubernetes.io/unschedulable` while the node is cordoned — each with
effect NoSchedule, so `kubectl describe node` and tolerations read as on Kubernetes.

The scheduler keeps VMs off such nodes by their conditions and `spec.unschedulable` anyway
(a toleration of these taints does not place a VM on a lost node). No NoExecute taint: a VM
on a lost node is not evicted by a timer; it reports the lost node until the node returns or an
operator acts (`dvp node drain`, or delete the Node).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.internal import NodeCondition
from controlplane.controllers.runtime.state import State

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
OWNED = (UNREACHABLE, NOT_READY, UNSCHEDULABLE)


def wanted(node_spec: dict[str, Any], node_status: dict[str, Any]) -> set[str]:
    """The keys of the state taints this node should carry now."""
    keys = set()
    ready = conditions.get(node_status, NodeCondition.READY)
    if ready is not None and ready.get("status") == "Unknown":
        keys.add(UNREACHABLE)
    elif ready is not None and ready.get("status") == "False":
        keys.add(NOT_READY)
    if node_spec.get("unschedulable"):
        keys.add(UNSCHEDULABLE)
    return keys


def with_state_taints(taints: list[dict[str, Any]], keys: set[str], now: dt.datetime) -> list[dict[str, Any]]:
    """`taints` with the state taints made `keys`: others kept as they are, a kept state taint
    keeps its `timeAdded`, a new one is stamped `now`."""
    out = [t for t in taints if t.get("key") not in OWNED or (t.get("key") in keys and t.get("effect") == "NoSchedule")]
    present = {t.get("key") for t in out}
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out += [{"key": k, "effect": "NoSchedule", "timeAdded": stamp} for k in OWNED if k in keys and k not in present]
    return out


class TaintHandler:
    """Sets the node's state taints from its status as this cycle leaves it (run last)."""

    name = "taints"

    def handle(self, state: State) -> None:
        spec = state.spec
        current = list(spec.get("taints") or [])
        new = with_state_taints(current, wanted(spec, state.status), dt.datetime.now(dt.UTC))
        if new != current:
            spec["taints"] = new
