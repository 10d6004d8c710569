"""The VirtualMachineSnapshot reconciler, after DVP's vmsnapshot life cycle:

1. init      — `VirtualMachineReady` and `VirtualMachineSnapshotReady` start Unknown; Pending;
2. lifecycle — a Ready snapshot stays Ready while its disk snapshots do (else Failed,
               `VirtualDiskSnapshotLost`); a Failed one stays Failed. Otherwise: the VM must
               exist and be Running or Stopped (else Failed, `WaitingForTheVirtualMachine`), its
               disks Ready (else Failed, `BlockDevicesNotReady`), and a running VM without a
               ready agent is refused under `requiredConsistency` (`PotentiallyInconsistent`).
               Then the manifests are kept in a Secret (`kept.py`), one VirtualDiskSnapshot per
               disk is made (`<disk>-<snapshot uid>`, owned by the snapshot), and the snapshot is
               Ready once they all are (`consistent` when they all are), Failed when one fails.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_DISKS,
    VIRTUAL_MACHINE_SNAPSHOTS,
    VIRTUAL_MACHINES,
)
from controlplane.api.snapshots import SnapshotPhase as Phase
from controlplane.api.snapshots import VMSCondition as C
from controlplane.api.v1alpha2 import MachinePhase
from controlplane.common.kube.client import SECRETS, KubeError
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, own_key, owners_of_kind
from controlplane.controllers.snapshot import kept
from controlplane.controllers.snapshot.vdsnapshot import agent_ready

R = C.VirtualMachineSnapshotReadyReason
READY = C.Type.VIRTUAL_MACHINE_SNAPSHOT_READY
VM_READY = C.Type.VIRTUAL_MACHINE_READY


def _set(state: State, type_: str, ok: bool | str, reason: str, message: str = "") -> None:
    conditions.set_condition(state.status, type_, ok, reason, message, generation=state.generation)


def _fail(state: State, reason: str, message: str) -> None:
    state.status["phase"] = Phase.FAILED
    _set(state, READY, False, reason, message)


def disk_snapshot_name(disk: str, uid: str) -> str:
    return f"{disk}-{uid}"


def vm_disks(vm: dict[str, Any]) -> list[str]:
    refs = (vm.get("status") or {}).get("blockDeviceRefs") or (vm.get("spec") or {}).get("blockDeviceRefs") or []
    return [r["name"] for r in refs if r.get("kind") == "VirtualDisk" and r.get("name")]


class InitHandler:
    name = "init"

    def handle(self, state: State) -> None:
        conditions.init_unknown(state.status, [VM_READY, READY], generation=state.generation)
        if state.deleting:
            state.status["phase"] = Phase.TERMINATING
            state.stop = True  # the Secret and the disk snapshots are owned: garbage collection removes them
            return
        state.status.setdefault("phase", Phase.PENDING)
        state.status["observedGeneration"] = state.generation


class LifecycleHandler:
    name = "lifecycle"
    condition = READY

    def handle(self, state: State) -> None:
        phase = state.status.get("phase")
        if phase == Phase.READY:
            self._still_ready(state)
            return
        if phase == Phase.FAILED:
            return
        name = state.spec.get("virtualMachineName", "")
        vm = state.get(VIRTUAL_MACHINES, name)
        vm_phase = ((vm or {}).get("status") or {}).get("phase")
        if vm is None or vm_phase not in (MachinePhase.RUNNING, MachinePhase.STOPPED):
            what = "does not exist" if vm is None else "is not ready"
            _set(state, VM_READY, False, C.VirtualMachineReadyReason.VIRTUAL_MACHINE_NOT_READY_FOR_SNAPSHOTTING,
                 f"The virtual machine {name!r} {what}.")
            _fail(state, R.WAITING_FOR_THE_VIRTUAL_MACHINE, f"Cannot take a snapshot: the virtual machine {name!r} {what}.")
            return
        _set(state, VM_READY, True, C.VirtualMachineReadyReason.VIRTUAL_MACHINE_READY)
        names = state.status.get("virtualDiskSnapshotNames") or []
        if not names:
            if not self._may_start(state, vm):
                return
            names = [disk_snapshot_name(d, state.uid) for d in vm_disks(vm)]
            state.status["virtualDiskSnapshotNames"] = names
            state.status["phase"] = Phase.IN_PROGRESS
        self._keep(state, vm)
        self._disk_snapshots(state, vm, names)

    def _may_start(self, state: State, vm: dict[str, Any]) -> bool:
        name = vm["metadata"]["name"]
        not_ready = [d for d in vm_disks(vm) if ((state.get(VIRTUAL_DISKS, d) or {}).get("status") or {})
                     .get("phase") != "Ready"]
        if not_ready:
            _fail(state, R.BLOCK_DEVICES_NOT_READY, f"Cannot take a snapshot of virtual machine {name!r}: the virtual "
                                                    f"disks {', '.join(not_ready)} are not ready (or resizing).")
            return False
        running = (vm.get("status") or {}).get("phase") == MachinePhase.RUNNING
        if running and not agent_ready(vm) and state.spec.get("requiredConsistency", True):
            _fail(state, R.POTENTIALLY_INCONSISTENT,
                  f"Cannot take a consistent snapshot of virtual machine {name!r}: virtual machine agent is not ready "
                  "and the virtual machine cannot be frozen.")
            return False
        return True

    def _keep(self, state: State, vm: dict[str, Any]) -> None:
        name = state.status.get("virtualMachineSnapshotSecretName") or kept.secret_name(state.name, state.uid)
        if state.get(SECRETS, name) is None:
            data, resources = kept.collect(state, vm)
            try:
                state.ctx.kube.create(SECRETS, kept.secret_body(state, name, data))
            except KubeError as exc:
                if not exc.already_exists:
                    raise
            state.status["resources"] = resources
        state.status["virtualMachineSnapshotSecretName"] = name

    def _disk_snapshots(self, state: State, vm: dict[str, Any], names: list[str]) -> None:
        snaps = []
        for snap_name in names:
            snap = state.get(VIRTUAL_DISK_SNAPSHOTS, snap_name)
            if snap is None:
                disk = snap_name.removesuffix(f"-{state.uid}")
                snap = {"apiVersion": VIRTUAL_DISK_SNAPSHOTS.api_version, "kind": VIRTUAL_DISK_SNAPSHOTS.kind,
                        "metadata": {"name": snap_name, "namespace": state.namespace,
                                     "ownerReferences": [state.owner_ref()]},
                        "spec": {"virtualDiskName": disk,
                                 "requiredConsistency": bool(state.spec.get("requiredConsistency", True))}}
                try:
                    state.ctx.kube.create(VIRTUAL_DISK_SNAPSHOTS, snap)
                except KubeError as exc:
                    if not exc.already_exists:
                        raise
            snaps.append(snap)
        failed = [s for s in snaps if (s.get("status") or {}).get("phase") == Phase.FAILED]
        if failed:
            cond = conditions.get_in(failed[0]["status"].get("conditions") or [], "VirtualDiskSnapshotReady") or {}
            _fail(state, R.VIRTUAL_MACHINE_SNAPSHOT_FAILED,
                  f"The virtual disk snapshot {failed[0]['metadata']['name']!r} is failed: cannot take snapshot. "
                  f"{cond.get('message') or ''}".strip())
            return
        ready = [s for s in snaps if (s.get("status") or {}).get("phase") == Phase.READY]
        if len(ready) < len(snaps):
            state.status["phase"] = Phase.IN_PROGRESS
            _set(state, READY, False, R.SNAPSHOTTING,
                 f"Waiting for the virtual disk snapshots to be taken for the block devices of the virtual machine "
                 f"{vm['metadata']['name']!r} ({len(ready)}/{len(snaps)}).")
            return
        state.status["consistent"] = all(bool(s["status"].get("consistent")) for s in snaps)
        state.status["phase"] = Phase.READY
        _set(state, READY, True, R.VIRTUAL_MACHINE_SNAPSHOT_READY)

    def _still_ready(self, state: State) -> None:
        lost = [n for n in state.status.get("virtualDiskSnapshotNames") or []
                if ((state.get(VIRTUAL_DISK_SNAPSHOTS, n) or {}).get("status") or {}).get("phase") != Phase.READY]
        if lost:
            what = "snapshot" if len(lost) == 1 else "snapshots"
            _fail(state, R.VIRTUAL_DISK_SNAPSHOT_LOST,
                  f"The underlying virtual disk {what} ({', '.join(lost)}) {'is' if len(lost) == 1 else 'are'} lost.")


PHASE_EVENTS = PhaseEvents(warning=frozenset({Phase.FAILED.value}))


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, VIRTUAL_MACHINE_SNAPSHOTS, [InitHandler(), LifecycleHandler()],
                            failure_condition=READY, after=[PHASE_EVENTS])

    def snapshots_of_vm(vm: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vm["metadata"].get("namespace", "")
        return [(ns, s["metadata"]["name"]) for s in ctx.informer(VIRTUAL_MACHINE_SNAPSHOTS).list(ns)
                if (s.get("spec") or {}).get("virtualMachineName") == vm["metadata"]["name"]
                and (s.get("status") or {}).get("phase") in (None, Phase.PENDING, Phase.IN_PROGRESS)]

    return reconciler, [
        Watch(VIRTUAL_MACHINE_SNAPSHOTS, lambda o: [own_key(o)]),
        Watch(VIRTUAL_DISK_SNAPSHOTS, owners_of_kind("VirtualMachineSnapshot")),
        Watch(VIRTUAL_MACHINES, snapshots_of_vm),
        Watch(SECRETS, owners_of_kind("VirtualMachineSnapshot")),
    ]
