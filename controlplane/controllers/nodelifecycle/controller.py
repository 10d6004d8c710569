"""The node lifecycle controller, as kube-controller-manager's for kubelets: the node handler
on every host renews its Lease in `kube-node-lease` every few seconds; a node whose Lease this
controller has not seen renewed for the grace period (`PlatformSettings.node_grace_seconds`)
gets `Ready=Unknown` (NodeStatusUnknown, naming the Lease and the last renewal), which keeps
new VMs off it and makes the VMs placed there report the lost node. When the node handler comes
back it writes its own Ready again (it pushes its status at once after a renewal that follows
failed ones, and on every start).

The same renewals measure the node's clock: `renewTime` is stamped by the node, so a renewal
seen as it happens tells how far the node's clock is from the control plane's.
`ClockSynchronized=False` (ClockSkewed) beyond `max_clock_skew_seconds`; nothing is placed on
such a node (TLS, tokens and leases all depend on time).

Handlers, in order:
1. heartbeat — Ready=Unknown once the grace period is over; otherwise a requeue for when it ends;
2. clock     — ClockSynchronized from the last skew measured;
3. taints    — the NoSchedule taints of the node's state (`taints.py`): unreachable, not-ready,
   unschedulable.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.internal import NODE_LEASE_NAMESPACE, NodeCondition, NodeReason
from controlplane.common.kube.client import LEASES, NODES
from controlplane.controllers.nodelifecycle.heartbeats import Heartbeats
from controlplane.controllers.nodelifecycle.taints import TaintHandler
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch


def _lease(state: State) -> dict[str, Any] | None:
    return state.get(LEASES, state.name, NODE_LEASE_NAMESPACE)


class HeartbeatHandler:
    name = "heartbeat"

    def __init__(self, heartbeats: Heartbeats) -> None:
        self.heartbeats = heartbeats

    def handle(self, state: State) -> None:
        grace = state.ctx.settings.node_grace_seconds
        hb = self.heartbeats.get(state.name, _lease(state))
        age = self.heartbeats.age(hb)
        if age < grace:
            state.requeue(grace - age + 0.5)
            return
        ready = conditions.get(state.status, NodeCondition.READY)
        if ready is not None and ready.get("status") == "Unknown" and \
                ready.get("reason") == NodeReason.NODE_STATUS_UNKNOWN:
            return  # already said; the message would only churn
        last = f"last renewed at {hb.renew_time}" if hb.renew_time else "never renewed"
        conditions.set_condition(
            state.status, NodeCondition.READY, conditions.UNKNOWN, NodeReason.NODE_STATUS_UNKNOWN,
            f"the node handler on {state.name} stopped renewing its Lease {NODE_LEASE_NAMESPACE}/{state.name} "
            f"({last}; grace period {grace:.0f}s): check `dvp agent` on the host and its network")


class ClockHandler:
    name = "clock"

    def __init__(self, heartbeats: Heartbeats) -> None:
        self.heartbeats = heartbeats

    def handle(self, state: State) -> None:
        skew = self.heartbeats.get(state.name, _lease(state)).skew
        if skew is None:
            return
        allowed = state.ctx.settings.max_clock_skew_seconds
        current = conditions.get(state.status, NodeCondition.CLOCK_SYNCHRONIZED)
        if abs(skew) > allowed:
            if current is not None and current.get("reason") == NodeReason.CLOCK_SKEWED:
                return  # said; a second more or less is not worth a write per renewal
            way = "ahead of" if skew > 0 else "behind"
            conditions.set_condition(
                state.status, NodeCondition.CLOCK_SYNCHRONIZED, False, NodeReason.CLOCK_SKEWED,
                f"the clock of node {state.name} is {abs(skew):.0f}s {way} the control plane's (allowed "
                f"{allowed:.0f}s): synchronise it (chrony or systemd-timesyncd); no VM is placed there meanwhile")
        elif current is None or current.get("status") != "True":  # said once, not for every small drift
            conditions.set_condition(state.status, NodeCondition.CLOCK_SYNCHRONIZED, True, NodeReason.CLOCK_IN_SYNC,
                                     f"the clock of node {state.name} is within {allowed:.0f}s of the control plane's")


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    heartbeats = Heartbeats()
    reconciler = Reconciler(ctx, NODES, [HeartbeatHandler(heartbeats), ClockHandler(heartbeats), TaintHandler()],
                            spec_fields=("taints",))

    def record(typ: str, lease: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = lease.get("metadata") or {}
        if meta.get("namespace") != NODE_LEASE_NAMESPACE:
            return
        if typ == "DELETED":
            return
        renew = (lease.get("spec") or {}).get("renewTime")
        live = typ == "MODIFIED" and old is not None and (old.get("spec") or {}).get("renewTime") != renew
        heartbeats.renewed(str(meta.get("name")), lease, live=live)

    ctx.informer(LEASES).add_handler(record)  # before the watch below: the reconcile finds it recorded

    def node_of_lease(lease: dict[str, Any]) -> list[tuple[str, str]]:
        meta = lease.get("metadata") or {}
        return [("", str(meta["name"]))] if meta.get("namespace") == NODE_LEASE_NAMESPACE else []

    def forget(typ: str, node: dict[str, Any], _old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            heartbeats.forget(str(node["metadata"]["name"]))

    ctx.informer(NODES).add_handler(forget)
    watches = [
        Watch(NODES, lambda n: [("", n["metadata"]["name"])], relevant=_state_changed),
        Watch(LEASES, node_of_lease),
    ]
    return reconciler, watches


def _state_changed(node: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Node events that matter here: its Ready or ClockSynchronized condition, its cordon or its
    taints changed (not the node handler's heartbeats)."""
    if old is None:
        return True
    spec, old_spec = node.get("spec") or {}, old.get("spec") or {}
    if spec.get("unschedulable") != old_spec.get("unschedulable") or spec.get("taints") != old_spec.get("taints"):
        return True

    def of(obj: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
        conds = (obj.get("status") or {}).get("conditions") or []
        return [(c.get("type"), c.get("status"), c.get("reason")) for c in conds
                if c.get("type") in (NodeCondition.READY, NodeCondition.CLOCK_SYNCHRONIZED)]
    return of(node) != of(old)
