"""The VirtualMachineOperation reconciler. Handlers in order:

1. init       — phase Pending, condition Completed Unknown;
2. terminal   — Completed, Failed and Superseded operations are final;
   (a deleted Migrate/Evict in progress is cancelled: migrate.py)
3. validate   — the VM exists; the type applies to its run policy and phase; Migrate/Evict
                need a second node and a Migratable machine (migrate.py);
4. queue      — one operation per VM at a time (oldest first); a newer power operation
                supersedes an older one still waiting (phase Superseded, reason Superseded);
                migrations also wait for DVP's per-node and cluster limits;
   restore    — a Restore runs in `restore.py`, a Clone in `clone.py` (DryRun, Strict, BestEffort);
   clone        each ends the chain;
5. execute    — the request goes to the VM controller (annotation on the VM) -> InProgress,
                SignalSent; a migration's goes to the instance (`spec.migration`);
6. complete   — the instance has handled the request and the VM reached the phase the
                operation wants -> Completed; too long -> Failed; a migration follows the
                instance's `status.migration`.
After every cycle: its phase event, a clone's temporary snapshot dropped, and retention
(`operation_retention.py`: finished operations deleted after 24 h, at most 10 kept per VM).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.migration import TERMINAL as MIGRATION_ENDED
from controlplane.api.resources import (
    INSTANCES,
    VIRTUAL_DISKS,
    VIRTUAL_MACHINE_OPERATIONS,
    VIRTUAL_MACHINE_SNAPSHOTS,
    VIRTUAL_MACHINES,
    VOLUMES,
)
from controlplane.api.v1alpha2 import VMOPCondition as C
from controlplane.api.v1alpha2 import VMOPPhase as Phase
from controlplane.common.kube.client import NODES
from controlplane.controllers import scheduling
from controlplane.controllers.operation_retention import Retention
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, fields_changed, own_key, owners_of_kind
from controlplane.controllers.snapshot.clone import CLONED_BY
from controlplane.controllers.vm import requests
from controlplane.controllers.vmop import migrate
from controlplane.controllers.vmop.assumed import AssumedMigrations
from controlplane.controllers.vmop.clone import CloneHandler, DropTemporarySnapshot
from controlplane.controllers.vmop.restore import RESTORED_BY, RestoreHandler

POWER = ("Start", "Stop", "Restart")
TIMEOUT_MARGIN = 300
R = C.CompletedReason


def _fail(state: State, reason: str, message: str) -> None:
    state.status["phase"] = Phase.FAILED
    conditions.set_condition(state.status, C.Type.COMPLETED, False, reason, message, generation=state.generation)
    state.ctx.recorder.record(state.changed, type="Warning", reason="OperationFailed", message=message)
    state.stop = True


def _supersede(state: State, newer: str) -> None:
    """DVP's phase for an operation a newer one of the same machine replaced before it ran."""
    message = f"superseded by the newer operation {newer}"
    state.status["phase"] = Phase.SUPERSEDED
    conditions.set_condition(state.status, C.Type.COMPLETED, False, R.SUPERSEDED, message, generation=state.generation)
    state.ctx.recorder.record(state.changed, type="Normal", reason="Superseded", message=message)
    state.stop = True


def _ops_of(state: State, vm_name: str) -> list[dict[str, Any]]:
    ops = state.lookup(indexes.OPERATIONS_BY_VM, f"{state.namespace}/{vm_name}")
    return sorted(ops, key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))


class Init:
    name = "init"

    def handle(self, state: State) -> None:
        if state.deleting:
            return migrate.cancel(state)
        if not state.status.get("phase"):
            state.status["phase"] = Phase.PENDING
        conditions.init_unknown(state.status, [C.Type.COMPLETED], generation=state.generation)
        if state.status["phase"] in (Phase.COMPLETED, Phase.FAILED, Phase.SUPERSEDED):
            state.stop = True


class Validate:
    name = "validate"

    def handle(self, state: State) -> None:
        if state.status["phase"] != Phase.PENDING:
            return
        spec = state.spec
        kind, vm_name = spec.get("type"), spec.get("virtualMachineName", "")
        vm = state.get(VIRTUAL_MACHINES, vm_name)
        if vm is None:
            return _fail(state, R.VIRTUAL_MACHINE_NOT_FOUND,
                         f"VirtualMachine {vm_name!r} does not exist: name an existing VirtualMachine of this "
                         "namespace in spec.virtualMachineName")
        if kind in migrate.TYPES:
            nodes = [n for n in state.list(NODES) if scheduling.node_ready(n)]
            if len(nodes) < 2:
                return _fail(state, R.NOT_APPLICABLE_FOR_VM_PHASE,
                             f"{kind} needs a second node to move the machine to; this platform has {len(nodes)} "
                             f"Ready node(s)")
            return migrate.validate(state, vm)
        if kind in ("Restore", "Clone"):
            return  # restore.RestoreHandler / clone.CloneHandler check the rest
        policy = (vm.get("spec") or {}).get("runPolicy") or "AlwaysOnUnlessStoppedManually"
        phase = (vm.get("status") or {}).get("phase")
        if policy == "AlwaysOff" or (policy == "AlwaysOn" and kind in ("Start", "Stop")):
            return _fail(state, R.NOT_APPLICABLE_FOR_RUN_POLICY,
                         f"{kind} does not apply to a machine with runPolicy {policy}")
        if kind == "Start" and spec.get("force"):
            return _fail(state, R.OPERATION_FAILED, "Start cannot be forced")
        if kind == "Start" and phase in ("Running", "Starting"):
            return _fail(state, R.NOT_APPLICABLE_FOR_VM_PHASE, f"the machine is already {phase}")
        if kind in ("Stop", "Restart") and phase in ("Stopped", "Pending", None):
            return _fail(state, R.NOT_APPLICABLE_FOR_VM_PHASE, f"the machine is {phase or 'Pending'}, not running")


class Queue:
    name = "queue"

    def __init__(self, assumed: AssumedMigrations | None = None) -> None:
        self.assumed = assumed

    def handle(self, state: State) -> None:
        if state.status["phase"] != Phase.PENDING:
            return
        vm_name = state.spec.get("virtualMachineName", "")
        ops = [o for o in _ops_of(state, vm_name) if o["metadata"]["name"] != state.name]
        running = [o for o in ops if (o.get("status") or {}).get("phase") == Phase.IN_PROGRESS]
        if running:
            conditions.set_condition(state.status, C.Type.COMPLETED, False, R.NOT_READY_TO_BE_EXECUTED,
                                     f"waiting for operation {running[0]['metadata']['name']} on the same machine",
                                     generation=state.generation)
            state.stop = True
            return
        mine = state.current["metadata"].get("creationTimestamp", "")
        newer = [o for o in ops if (o.get("spec") or {}).get("type") in POWER
                 and (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]) > (mine, state.name)
                 and (o.get("status") or {}).get("phase") in (None, Phase.PENDING)]
        if newer and state.spec.get("type") in POWER:
            _supersede(state, newer[-1]["metadata"]["name"])
        elif state.spec.get("type") in migrate.TYPES and (vm := state.get(VIRTUAL_MACHINES, vm_name)) is not None:
            migrate.queue(state, vm, self.assumed)


class Execute:
    name = "execute"

    def __init__(self, assumed: AssumedMigrations | None = None) -> None:
        self.assumed = assumed

    def handle(self, state: State) -> None:
        if state.status["phase"] != Phase.PENDING:
            return
        vm_name = state.spec.get("virtualMachineName", "")
        if state.spec.get("type") in migrate.TYPES:
            vm = state.get(VIRTUAL_MACHINES, vm_name)
            return migrate.execute(state, vm, self.assumed) if vm is not None else _fail(
                state, R.VIRTUAL_MACHINE_NOT_FOUND, f"VirtualMachine {vm_name!r} was deleted")
        value = requests.encode(id=state.uid, action=state.spec["type"], force=bool(state.spec.get("force")))
        state.ctx.kube.patch(VIRTUAL_MACHINES, vm_name, {"metadata": {"annotations": {requests.ANNOTATION: value}}},
                             state.namespace)
        state.status["phase"] = Phase.IN_PROGRESS
        reason = {"Start": R.START_IN_PROGRESS, "Stop": R.STOP_IN_PROGRESS, "Restart": R.RESTART_IN_PROGRESS}
        conditions.set_condition(state.status, C.Type.SIGNAL_SENT, True, C.SignalSentReason.SIGNAL_SENT_SUCCESS, "",
                                 generation=state.generation)
        conditions.set_condition(state.status, C.Type.COMPLETED, False, reason[state.spec["type"]],
                                 f"{state.spec['type']} requested", generation=state.generation)
        state.ctx.recorder.record(state.changed, type="Normal", reason="OperationStarted",
                                  message=f"{state.spec['type']} of {vm_name} requested")
        state.requeue(state.ctx.runtime.requeue_soon)


class Complete:
    name = "complete"

    def handle(self, state: State) -> None:
        if state.status["phase"] != Phase.IN_PROGRESS:
            return
        vm_name = state.spec.get("virtualMachineName", "")
        vm = state.get(VIRTUAL_MACHINES, vm_name)
        if state.spec.get("type") in migrate.TYPES:
            return migrate.complete(state, vm)
        inst = state.get(INSTANCES, vm_name)
        if vm is None:
            return _fail(state, R.VIRTUAL_MACHINE_NOT_FOUND, f"VirtualMachine {vm_name!r} was deleted")
        handled = ((inst or {}).get("status") or {}).get("handledPowerRequest") == state.uid
        phase = (vm.get("status") or {}).get("phase")
        want = "Stopped" if state.spec["type"] == "Stop" else "Running"
        if handled and phase == want:
            state.status["phase"] = Phase.COMPLETED
            conditions.set_condition(state.status, C.Type.COMPLETED, True, R.OPERATION_COMPLETED,
                                     f"the machine is {want}", generation=state.generation)
            state.ctx.recorder.record(state.changed, type="Normal", reason="OperationCompleted",
                                      message=f"{state.spec['type']} of {vm_name} completed")
            return
        started = next((c.get("lastTransitionTime") for c in state.status.get("conditions") or []
                        if c.get("type") == C.Type.SIGNAL_SENT), None)
        grace = int((vm.get("spec") or {}).get("terminationGracePeriodSeconds") or 60)
        if started:
            t = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
            if (dt.datetime.now(dt.UTC) - t).total_seconds() > grace + TIMEOUT_MARGIN:
                return _fail(state, R.OPERATION_FAILED, f"the machine did not become {want} in time "
                                                        f"(it is {phase})")
        state.requeue(state.ctx.runtime.requeue_progress)


PHASE_EVENTS = PhaseEvents(warning=frozenset({Phase.FAILED.value}))
RETENTION = Retention(frozenset({Phase.COMPLETED, Phase.FAILED, Phase.SUPERSEDED}), indexes.OPERATIONS_BY_VM,
                      "virtualMachineName")


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    assumed = AssumedMigrations()  # shared by queue and execute: admissions the cache has not shown yet
    reconciler = Reconciler(ctx, VIRTUAL_MACHINE_OPERATIONS, [Init(), Validate(), Queue(assumed), RestoreHandler(),
                                                              CloneHandler(), Execute(assumed), Complete()],
                            failure_condition=C.Type.COMPLETED,
                            after=[PHASE_EVENTS, DropTemporarySnapshot(), RETENTION])

    def ops_of_vm(obj: dict[str, Any]) -> list[tuple[str, str]]:
        ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        return [own_key(o) for o in indexes.lookup(ctx, indexes.OPERATIONS_BY_VM, f"{ns}/{name}")
                if (o.get("status") or {}).get("phase") not in (Phase.COMPLETED, Phase.FAILED, Phase.SUPERSEDED)]

    def siblings(op: dict[str, Any]) -> list[tuple[str, str]]:
        vm = (op.get("spec") or {}).get("virtualMachineName", "")
        return ops_of_vm({"metadata": {"namespace": op["metadata"].get("namespace", ""), "name": vm}}) + [own_key(op)]

    def ops_of_disk(disk: dict[str, Any]) -> list[tuple[str, str]]:
        """A Restore or Clone waits for the disks it makes (marked with its uid) to be Ready, and a
        Restore for the old disk (used by its VM) to be gone: their events wake it, not a poll."""
        meta = disk.get("metadata") or {}
        marks = {v for k, v in (meta.get("annotations") or {}).items() if k in (RESTORED_BY, CLONED_BY)}
        keys = [own_key(o) for uid in marks for o in indexes.lookup(ctx, indexes.OPERATIONS_BY_UID, uid)
                if (o.get("status") or {}).get("phase") not in (Phase.COMPLETED, Phase.FAILED, Phase.SUPERSEDED)]
        return keys + ops_of_users(meta)

    def ops_of_users(meta: dict[str, Any]) -> list[tuple[str, str]]:
        """The operations of the VMs using the disk named in `meta` (a disk's, or its volume's: a
        volume has its disk's name; a Restore waits for the volumes it reverts in place)."""
        disk = indexes.block_device("VirtualDisk", meta.get("namespace", ""), meta["name"])
        return [key for vm in indexes.lookup(ctx, indexes.VMS_BY_BLOCK_DEVICE, disk) for key in ops_of_vm(vm)]

    def queued_migrations(inst: dict[str, Any]) -> list[tuple[str, str]]:
        """A migration that ended frees its nodes' slots: the migrations queued (Pending) wake at
        once instead of at their next periodic look."""
        if ((inst.get("status") or {}).get("migration") or {}).get("phase") not in MIGRATION_ENDED:
            return []
        return [own_key(o) for o in indexes.lookup(ctx, indexes.OPERATIONS_QUEUED, "true")]

    return reconciler, [Watch(VIRTUAL_MACHINE_OPERATIONS, siblings),
                        Watch(VIRTUAL_MACHINES, ops_of_vm), Watch(INSTANCES, ops_of_vm),
                        Watch(INSTANCES, queued_migrations, relevant=fields_changed(("status", "migration", "phase"))),
                        Watch(VIRTUAL_MACHINE_SNAPSHOTS, owners_of_kind("VirtualMachineOperation")),
                        Watch(VIRTUAL_DISKS, ops_of_disk, relevant=fields_changed(("status", "phase"))),
                        Watch(VOLUMES, lambda v: ops_of_users(v["metadata"]), relevant=fields_changed(("status", "reverted")))]
