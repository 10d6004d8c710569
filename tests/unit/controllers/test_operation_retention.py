"""Finished VirtualMachineOperations go as DVP's vmop garbage collector removes them (the
VirtualMachineSnapshotOperations of a snapshot the same way, `operation_retention.py`): 24 h after
their creation, and beyond the 10 newest finished ones of a VM; only once their final status is
stored; never one still running or already being deleted."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from controlplane.api.resources import VIRTUAL_MACHINE_OPERATIONS
from controlplane.controllers.operation_retention import SETTLE
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.vmop.controller import RETENTION

DAY = 86400.0


def _op(name: str, hours_ago: float, phase: str | None, *, deleting: bool = False) -> dict[str, Any]:
    created = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if deleting:
        meta["deletionTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": meta, "spec": {"type": "Start", "virtualMachineName": "vm"},
            "status": {"phase": phase} if phase else {}}


class _Kube:
    def __init__(self, resource: Any = VIRTUAL_MACHINE_OPERATIONS) -> None:
        self.resource = resource
        self.deleted: list[str] = []

    def delete(self, resource: Any, name: str, namespace: str, *, preconditions: dict[str, str] | None = None) -> None:
        assert resource == self.resource and namespace == "ns" and preconditions == {"uid": f"uid-{name}"}
        self.deleted.append(name)


def _cycle(me: dict[str, Any], now_phase: str, others: list[dict[str, Any]]) -> tuple[list[str], float | None]:
    """Run retention on `me` as the cycle leaves it (`now_phase`); the names deleted and the requeue."""
    changed = {**me, "status": {"phase": now_phase}}
    kube = _Kube()
    wishes: list[float] = []
    state = SimpleNamespace(
        name=me["metadata"]["name"], namespace="ns", spec=me["spec"], resource=VIRTUAL_MACHINE_OPERATIONS, current=me, changed=changed,
        ctx=SimpleNamespace(settings=PlatformSettings(), kube=kube), requeue=wishes.append,
        lookup=lambda index, key: [me, *others] if key == "ns/vm" else [])
    RETENTION.handle(state)  # type: ignore[arg-type]
    return kube.deleted, (min(wishes) if wishes else None)


def test_a_finished_operation_comes_back_when_its_day_is_up() -> None:
    deleted, requeue = _cycle(_op("start", 2, "Completed"), "Completed", [])
    assert deleted == [] and requeue is not None and abs(requeue - (DAY - 7200)) < 60


def test_one_older_than_a_day_is_deleted_once_its_final_status_is_stored() -> None:
    deleted, _ = _cycle(_op("old", 25, "Failed"), "Failed", [])
    assert deleted == ["old"]
    deleted, requeue = _cycle(_op("late", 25, "InProgress"), "Completed", [])  # finishing in this cycle
    assert deleted == [] and requeue == SETTLE


def test_a_vm_keeps_its_ten_newest_finished_operations() -> None:
    older = [_op(f"op-{i:02d}", 20 - i, "Completed") for i in range(11)]  # op-00 the oldest
    running = _op("running", 30, "InProgress")
    terminating = _op("leaving", 23, "Completed", deleting=True)
    deleted, requeue = _cycle(_op("newest", 0, "InProgress"), "Completed", [*older, running, terminating])
    assert sorted(deleted) == ["op-00", "op-01"], "12 finished: the two oldest go; running and leaving ones never"
    assert requeue is not None and requeue > DAY - 60, "the newest is kept"


def test_running_operations_are_left_alone() -> None:
    deleted, requeue = _cycle(_op("running", 30, "InProgress"), "InProgress",
                              [_op(f"op-{i:02d}", 1, "Completed") for i in range(12)])
    assert deleted == [] and requeue is None


def test_snapshot_operations_are_counted_per_snapshot() -> None:
    from controlplane.api.resources import VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS
    from controlplane.controllers.snapshot.vmsop import RETENTION as VMSOP_RETENTION

    def sop(name: str, hours_ago: float, snapshot: str) -> dict[str, Any]:
        op = _op(name, hours_ago, "Completed")
        op["spec"] = {"type": "CreateVirtualMachine", "virtualMachineSnapshotName": snapshot}
        return op

    me = sop("newest", 0, "snap")
    same = [sop(f"s-{i:02d}", 20 - i, "snap") for i in range(10)]
    asked: list[str] = []

    def lookup(index: Any, key: str) -> list[dict[str, Any]]:
        asked.append(key)
        return [me, *same] if key == "ns/snap" else []

    kube = _Kube(VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS)
    state = SimpleNamespace(
        name="newest", namespace="ns", spec=me["spec"], resource=VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS, current=me,
        changed=me, ctx=SimpleNamespace(settings=PlatformSettings(), kube=kube), requeue=lambda after: None,
        lookup=lookup)
    VMSOP_RETENTION.handle(state)  # type: ignore[arg-type]
    assert asked == ["ns/snap"] and kube.deleted == ["s-00"]
