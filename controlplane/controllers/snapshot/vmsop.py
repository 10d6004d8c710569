"""The VirtualMachineSnapshotOperation reconciler: `CreateVirtualMachine` makes a new machine from
a Ready VirtualMachineSnapshot (the plan of `clone.py`: names from nameReplacement/customization,
new IP and MACs, disks from the snapshot's VirtualDiskSnapshots; DryRun only reports). Phases
Pending -> InProgress -> Completed/Failed with DVP's `Completed` condition reasons (vmsopcondition).
The spec is immutable (a CEL rule of DVP's CRD), so a finished operation stays finished; it is
deleted 24 h after its creation, and beyond the 10 newest finished ones of its snapshot
(`operation_retention.py`).
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    VIRTUAL_DISKS,
    VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS,
    VIRTUAL_MACHINE_SNAPSHOTS,
)
from controlplane.api.snapshots import SnapshotOperationPhase as Phase
from controlplane.api.snapshots import VMSOPCondition as C
from controlplane.common.kube.client import SECRETS
from controlplane.controllers.operation_retention import Retention
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, own_key
from controlplane.controllers.snapshot.clone import CLONED_BY, ClonePlan
from controlplane.controllers.snapshot.kept import read_kept

R = C.CompletedReason


def _set(state: State, ok: bool | str, reason: str, message: str) -> None:
    conditions.set_condition(state.status, C.Type.COMPLETED, ok, reason, message, generation=state.generation)


def _finish(state: State, ok: bool, reason: str, message: str) -> None:
    state.status["phase"] = Phase.COMPLETED if ok else Phase.FAILED
    _set(state, ok, reason, message)


class InitHandler:
    name = "init"

    def handle(self, state: State) -> None:
        conditions.init_unknown(state.status, [C.Type.COMPLETED], generation=state.generation)
        if state.deleting:
            state.status["phase"] = Phase.TERMINATING
        state.status.setdefault("phase", Phase.PENDING)
        state.status["observedGeneration"] = state.generation
        if state.status["phase"] in (Phase.COMPLETED, Phase.FAILED, Phase.TERMINATING):
            state.stop = True


class CreateHandler:
    name = "create"
    condition = C.Type.COMPLETED

    def handle(self, state: State) -> None:
        opts = state.spec.get("createVirtualMachine") or {}
        name = state.spec.get("virtualMachineSnapshotName", "")
        snap = state.get(VIRTUAL_MACHINE_SNAPSHOTS, name)
        if snap is None:
            return _finish(state, False, R.VIRTUAL_MACHINE_SNAPSHOT_NOT_FOUND,
                           f"VirtualMachineSnapshot {name!r} does not exist: fix spec.virtualMachineSnapshotName")
        if (snap.get("status") or {}).get("phase") != "Ready":
            state.status["phase"] = Phase.PENDING
            return _set(state, False, R.NOT_READY_TO_BE_EXECUTED,
                        f"VirtualMachineSnapshot {name!r} is {(snap.get('status') or {}).get('phase') or 'Pending'}: "
                        "waiting for it to be Ready")
        secret = state.get(SECRETS, snap["status"].get("virtualMachineSnapshotSecretName") or "")
        plan = ClonePlan(state, snap, read_kept(secret) if secret else {}, opts)
        if opts.get("mode") == "DryRun":
            state.status["resources"] = plan.resources("Completed", "would be created") + plan.conflicts + plan.missing
            return _finish(state, not plan.conflicts, R.OPERATION_COMPLETED if not plan.conflicts else R.OPERATION_FAILED,
                           "dry run: " + ("the machine would be created" if not plan.conflicts
                                          else "conflicts would stop it"))
        if plan.conflicts:
            state.status["resources"] = plan.conflicts
            return _finish(state, False, R.OPERATION_FAILED,
                           "conflicts stop the operation: " + "; ".join(c["message"] for c in plan.conflicts))
        state.status["phase"] = Phase.IN_PROGRESS
        done = plan.apply(state)
        state.status["resources"] = plan.resources("Completed" if done else "InProgress",
                                                   "created" if done else "creating")
        if done:
            return _finish(state, True, R.OPERATION_COMPLETED, f"virtual machine {plan.vm_name} created from {name}")
        _set(state, False, R.CREATE_VIRTUAL_MACHINE_IN_PROGRESS, f"making {plan.vm_name} and its disks")
        state.requeue(state.ctx.runtime.requeue_progress)


PHASE_EVENTS = PhaseEvents(warning=frozenset({Phase.FAILED.value}))
RETENTION = Retention(frozenset({Phase.COMPLETED, Phase.FAILED}), indexes.SNAPSHOT_OPERATIONS_BY_SNAPSHOT,
                      "virtualMachineSnapshotName")


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS, [InitHandler(), CreateHandler()],
                            failure_condition=C.Type.COMPLETED, after=[PHASE_EVENTS, RETENTION])

    def ops_waiting(obj: dict[str, Any]) -> list[tuple[str, str]]:
        ns = obj["metadata"].get("namespace", "")
        return [own_key(o) for o in ctx.informer(VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS).list(ns)
                if (o.get("status") or {}).get("phase") in (None, Phase.PENDING, Phase.IN_PROGRESS)]

    def op_of_disk(disk: dict[str, Any]) -> list[tuple[str, str]]:
        return ops_waiting(disk) if ((disk.get("metadata") or {}).get("annotations") or {}).get(CLONED_BY) else []

    return reconciler, [
        Watch(VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS, lambda o: [own_key(o)]),
        Watch(VIRTUAL_MACHINE_SNAPSHOTS, ops_waiting),
        Watch(VIRTUAL_DISKS, op_of_disk),
    ]
