"""The node lifecycle controller's decisions (a lost Lease, clock skew) with a controllable
clock, and a VM's report of its lost node."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.common.kube.client import LEASES, NODES
from controlplane.controllers.nodelifecycle.controller import ClockHandler, HeartbeatHandler
from controlplane.controllers.nodelifecycle.heartbeats import Heartbeats
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.vm.nodehealth import NodeHealthHandler
from tests.unit.controllers.recorders import CollectedEvents

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> dt.datetime:
        return T0 + dt.timedelta(seconds=self.t)


def lease(renew: dt.datetime) -> dict[str, Any]:
    return {"metadata": {"name": "n1", "namespace": "kube-node-lease"},
            "spec": {"renewTime": renew.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


def node_obj(ready: str = "True", reason: str = "NodeHandlerReady") -> dict[str, Any]:
    return {"metadata": {"name": "n1", "resourceVersion": "1"},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": "m"}]}}


def cond_of(status: dict[str, Any], type_: str) -> dict[str, Any]:
    cond = conditions.get(status, type_)
    assert cond is not None, f"no {type_} condition in {status}"
    return cond


def ctx_with(*objs: tuple[Any, dict[str, Any]]) -> Context:
    ctx = Context(kube=None, settings=PlatformSettings(node_grace_seconds=40, max_clock_skew_seconds=30),  # type: ignore[arg-type]
                  recorder=CollectedEvents())
    for resource in (NODES, LEASES, VIRTUAL_MACHINES):
        ctx.informer(resource)
    for resource, obj in objs:
        ctx.informer(resource)._apply({"type": "ADDED", "object": obj})
    return ctx


def test_a_node_whose_lease_is_not_renewed_becomes_unknown_after_the_grace_period() -> None:
    clock = Clock()
    hb = Heartbeats(monotonic=clock.monotonic, wall=clock.wall)
    ctx = ctx_with((NODES, node_obj()), (LEASES, lease(clock.wall())))
    state = State(ctx, NODES, node_obj())
    HeartbeatHandler(hb).handle(state)  # first sight: a full grace period from now
    assert cond_of(state.status, "Ready")["status"] == "True" and state.requeue_after == pytest.approx(40.5)
    clock.t += 30
    hb.renewed("n1", lease(clock.wall()), live=True)  # renewed: the grace starts again
    clock.t += 39
    state = State(ctx, NODES, node_obj())
    HeartbeatHandler(hb).handle(state)
    assert cond_of(state.status, "Ready")["status"] == "True"
    clock.t += 2
    state = State(ctx, NODES, node_obj())
    HeartbeatHandler(hb).handle(state)
    ready = cond_of(state.status, "Ready")
    assert ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
    assert "n1" in ready["message"] and "kube-node-lease/n1" in ready["message"] and "grace period 40s" in ready["message"]


def test_an_old_lease_seen_at_start_gets_a_grace_period_not_an_instant_verdict() -> None:
    clock = Clock()
    hb = Heartbeats(monotonic=clock.monotonic, wall=clock.wall)
    hb.renewed("n1", lease(clock.wall() - dt.timedelta(hours=1)), live=False)
    state = State(ctx_with(), NODES, node_obj())
    HeartbeatHandler(hb).handle(state)
    assert cond_of(state.status, "Ready")["status"] == "True"
    assert hb.get("n1", None).skew is None  # a renewal not seen live measures no skew


@pytest.mark.parametrize("skew, status, words", [
    (600, "False", "600s ahead of"),
    (-600, "False", "600s behind"),
    (5, "True", "within 30s"),
], ids=["ahead", "behind", "in-sync"])
def test_clock_skew_from_live_renewals(skew: float, status: str, words: str) -> None:
    clock = Clock()
    hb = Heartbeats(monotonic=clock.monotonic, wall=clock.wall)
    hb.renewed("n1", lease(clock.wall()), live=False)
    hb.renewed("n1", lease(clock.wall() + dt.timedelta(seconds=skew)), live=True)
    state = State(ctx_with(), NODES, node_obj())
    ClockHandler(hb).handle(state)
    cond = cond_of(state.status, "ClockSynchronized")
    assert cond["status"] == status and words in cond["message"]
    assert cond["reason"] == ("ClockSkewed" if status == "False" else "ClockInSync")


def _vm(node: str = "n1", running_reason: str = "VirtualMachineRunning") -> dict[str, Any]:
    return {"metadata": {"name": "vm", "namespace": "default", "generation": 1},
            "spec": {}, "status": {"nodeName": node, "conditions": [
                {"type": "Running", "status": "True", "reason": running_reason, "message": ""}]}}


@pytest.mark.parametrize("node, want_status, want_reason, words", [
    (node_obj("Unknown", "NodeStatusUnknown"), "Unknown", "NodeUnresponsive", "node n1 is lost"),
    (None, "Unknown", "NodeUnresponsive", "node n1 is gone"),
    (node_obj(), "True", "VirtualMachineRunning", ""),
    (node_obj("False", "LibvirtUnavailable"), "True", "VirtualMachineRunning", ""),
], ids=["lost", "gone", "healthy", "not-ready-but-answering"])
def test_a_vm_reports_its_lost_node(node: dict[str, Any] | None, want_status: str, want_reason: str,
                                    words: str) -> None:
    ctx = ctx_with(*([(NODES, node)] if node else []))
    state = State(ctx, VIRTUAL_MACHINES, _vm())
    NodeHealthHandler().handle(state)
    cond = cond_of(state.status, "Running")
    assert (cond["status"], cond["reason"]) == (want_status, want_reason) and words in cond["message"]


def test_a_lost_node_report_goes_when_the_node_is_back() -> None:
    state = State(ctx_with((NODES, node_obj())), VIRTUAL_MACHINES, _vm(running_reason="NodeUnresponsive"))
    NodeHealthHandler().handle(state)
    cond = cond_of(state.status, "Running")
    assert cond["reason"] == "VirtualMachineNotRunning" and "node n1 is back" in cond["message"]


def test_a_lost_node_report_is_not_rewritten_each_cycle() -> None:
    ctx = ctx_with((NODES, node_obj("Unknown", "NodeStatusUnknown")))
    state = State(ctx, VIRTUAL_MACHINES, _vm())
    NodeHealthHandler().handle(state)
    said = cond_of(state.status, "Running")
    said["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    stored = {**_vm(), "status": {**state.status}}
    again = State(ctx, VIRTUAL_MACHINES, stored)
    conditions.set_condition(again.status, "Running", True, "VirtualMachineRunning", "")  # what `status` does first
    NodeHealthHandler().handle(again)
    assert again.status == stored["status"]  # nothing to write


def _taints(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from controlplane.controllers.nodelifecycle.taints import TaintHandler

    state = State(ctx_with(), NODES, node)
    TaintHandler().handle(state)
    return {t["key"]: t for t in state.spec.get("taints") or []}


def test_state_taints_follow_ready_and_cordon_and_leave_other_taints_alone() -> None:
    own = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    lost = {**node_obj("Unknown", "NodeStatusUnknown"), "spec": {"taints": [own]}}
    taints = _taints(lost)
    assert set(taints) == {"dedicated", "node.kubernetes.io/unreachable"} and taints["dedicated"] == own
    assert taints["node.kubernetes.io/unreachable"]["effect"] == "NoSchedule"
    assert "timeAdded" in taints["node.kubernetes.io/unreachable"]
    assert set(_taints(node_obj("False", "LibvirtUnavailable"))) == {"node.kubernetes.io/not-ready"}
    cordoned = {**node_obj(), "spec": {"unschedulable": True}}
    assert set(_taints(cordoned)) == {"node.kubernetes.io/unschedulable"}
    # back and uncordoned: the state taints go, the operator's stays, a kept one keeps its time
    kept = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2026-01-01T00:00:00Z"}
    assert _taints({**node_obj(), "spec": {"taints": [own, {"key": "node.kubernetes.io/unreachable",
                                                               "effect": "NoSchedule"}]}}) == {"dedicated": own}
    assert _taints({**node_obj(), "spec": {"unschedulable": True, "taints": [kept]}}) == {kept["key"]: kept}


def test_the_reconciler_writes_only_the_spec_fields_it_owns() -> None:
    from controlplane.controllers.runtime.reconciler import Reconciler

    class Kube:
        patches: list[dict[str, Any]] = []

        def patch(self, res: Any, name: str, body: dict[str, Any], ns: Any = None) -> dict[str, Any]:
            self.patches.append(body)
            return {"metadata": {"resourceVersion": "2"}}

    ctx = ctx_with()
    ctx.kube = Kube()  # type: ignore[assignment]
    node = {**node_obj(), "spec": {"unschedulable": True}}
    state = State(ctx, NODES, node)
    state.spec["taints"] = [{"key": "k", "effect": "NoSchedule"}]
    state.spec["podCIDR"] = "10.0.0.0/24"  # not owned: never written
    Reconciler(ctx, NODES, [], spec_fields=("taints",)).write(state)
    assert Kube.patches == [{"metadata": {"resourceVersion": "1"}, "spec": {"taints": [{"key": "k",
                                                                                         "effect": "NoSchedule"}]}}]
    Kube.patches.clear()
    Reconciler(ctx, NODES, []).write(state)  # owns no spec field: nothing to write
    assert Kube.patches == []


def test_a_removed_annotation_is_removed_by_the_write() -> None:
    from controlplane.controllers.runtime.reconciler import _map_patch

    assert _map_patch({"a": "1", "c": "3"}, {"a": "1", "b": "2"}) == {"b": None, "c": "3"}
    assert _map_patch({}, {"a": "1"}) is None
