"""The VirtualDiskSnapshot reconciler: a snapshot is a copy of the disk's volume, made by the node
handler of the disk's node as another InternalVirtualDiskVolume (`vds-<snapshot uid>`, owned by
the snapshot, `source.volume` naming the disk's volume). Phases and conditions as DVP's
vdsnapshot controller writes them:

1. init      — `VirtualDiskReady` and `VirtualDiskSnapshotReady` start Unknown; phase Pending;
2. disk      — the VirtualDisk must exist and be Ready, else the snapshot fails
               (`WaitingForTheVirtualDisk`, as DVP: a snapshot is taken once, not retried);
3. snapshot  — a disk a running VM uses is copied consistently only through the guest agent
               (filesystems frozen): with `requiredConsistency` and no agent the snapshot fails
               with `PotentiallyInconsistent`; otherwise the volume copy is requested and
               followed (InProgress -> Ready with `consistent`, or Failed); a Ready snapshot
               whose volume is gone fails with `Lost`.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.internal import VolumePhase, VolumeReason
from controlplane.api.resources import VIRTUAL_DISK_SNAPSHOTS, VIRTUAL_DISKS, VOLUMES
from controlplane.api.snapshots import SnapshotPhase as Phase
from controlplane.api.snapshots import VDSCondition as C
from controlplane.api.snapshots import snapshot_volume_name
from controlplane.api.v1alpha2 import MachinePhase, VMCondition
from controlplane.api.volume import VolumeSpec
from controlplane.common.kube.client import KubeError
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, own_key, owners_of_kind

R = C.VirtualDiskSnapshotReadyReason
READY = C.Type.VIRTUAL_DISK_SNAPSHOT_READY


def _set(state: State, type_: str, ok: bool | str, reason: str, message: str = "") -> None:
    conditions.set_condition(state.status, type_, ok, reason, message, generation=state.generation)


def _fail(state: State, reason: str, message: str) -> None:
    state.status["phase"] = Phase.FAILED
    _set(state, READY, False, reason, message)
    state.stop = True


def running_user(state: State, disk: str, namespace: str | None = None) -> dict[str, Any] | None:
    """The VM using the disk (in `namespace`, default the object's) that is not stopped (its
    guest may be writing), if any."""
    ns = state.namespace if namespace is None else namespace
    for vm in state.lookup(indexes.VMS_BY_BLOCK_DEVICE, indexes.block_device("VirtualDisk", ns, disk)):
        if (vm.get("status") or {}).get("phase") not in (None, MachinePhase.PENDING, MachinePhase.STOPPED):
            return vm
    return None


def agent_ready(vm: dict[str, Any]) -> bool:
    cond = conditions.get_in((vm.get("status") or {}).get("conditions") or [], VMCondition.Type.AGENT_READY)
    return bool(cond and cond.get("status") == "True")


class InitHandler:
    name = "init"

    def handle(self, state: State) -> None:
        conditions.init_unknown(state.status, [C.Type.VIRTUAL_DISK_READY, READY], generation=state.generation)
        if state.deleting:
            state.status["phase"] = Phase.TERMINATING
            state.stop = True  # the volume is owned: garbage collection removes it
            return
        state.status.setdefault("phase", Phase.PENDING)
        state.status["observedGeneration"] = state.generation


class DiskHandler:
    name = "disk"

    def handle(self, state: State) -> None:
        if state.status.get("phase") in (Phase.READY, Phase.FAILED) or state.get(VOLUMES, self_volume(state)):
            return  # taken (or refused) once; the disk's later state does not matter
        disk_name = state.spec.get("virtualDiskName", "")
        disk = state.get(VIRTUAL_DISKS, disk_name)
        if disk is None or (disk.get("status") or {}).get("phase") != "Ready":
            what = "does not exist" if disk is None else "is not ready"
            _set(state, C.Type.VIRTUAL_DISK_READY, False, C.VirtualDiskReadyReason.VIRTUAL_DISK_NOT_READY_FOR_SNAPSHOTTING,
                 f"The virtual disk {disk_name!r} {what}.")
            _fail(state, R.WAITING_FOR_THE_VIRTUAL_DISK, f"Cannot take a snapshot: the virtual disk {disk_name!r} {what}.")
            return
        _set(state, C.Type.VIRTUAL_DISK_READY, True, C.VirtualDiskReadyReason.VIRTUAL_DISK_READY)
        state.scratch["disk"] = disk


def self_volume(state: State) -> str:
    return snapshot_volume_name(state.uid)


class SnapshotHandler:
    name = "snapshot"
    condition = READY

    def handle(self, state: State) -> None:
        name = self_volume(state)
        volume = state.get(VOLUMES, name)
        if volume is None:
            if state.status.get("phase") == Phase.READY:
                _fail(state, R.LOST, f"The snapshot's volume {name!r} is no longer available.")
            elif state.status.get("phase") != Phase.FAILED:
                self._create(state, name)
            return
        self._follow(state, volume)

    def _create(self, state: State, name: str) -> None:
        disk = state.scratch["disk"]
        disk_name = disk["metadata"]["name"]
        source = state.get(VOLUMES, (disk.get("status") or {}).get("target", {}).get("persistentVolumeClaimName")
                           or disk_name)
        if source is None:
            _fail(state, R.WAITING_FOR_THE_VIRTUAL_DISK,
                  f"Cannot take a snapshot: the volume of virtual disk {disk_name!r} does not exist.")
            return
        required = bool(state.spec.get("requiredConsistency", True))
        vm = running_user(state, disk_name)
        freeze = vm is not None and agent_ready(vm)
        if vm is not None and not freeze and required:
            _fail(state, R.POTENTIALLY_INCONSISTENT,
                  f"Cannot take a consistent snapshot of virtual disk {disk_name!r} attached to virtual machine "
                  f"{vm['metadata']['name']!r}: virtual machine agent is not ready and the virtual machine cannot be "
                  "frozen.")
            return
        node = source["spec"]["nodeName"]
        size = int((source.get("status") or {}).get("capacityBytes") or 0) or int(source["spec"]["size"])
        spec = VolumeSpec(node_name=node, size_bytes=size, source_volume=source["metadata"]["name"],
                          require_consistency=required, snapshot=True)
        try:
            state.ctx.kube.create(VOLUMES, spec.new_object(name, state.namespace, state.owner_ref()))
        except KubeError as exc:
            if not exc.already_exists:
                raise
        state.status["phase"] = Phase.IN_PROGRESS
        state.status["volumeSnapshotName"] = name  # as `_follow` says it: the volume's event needs no write
        if freeze:
            _set(state, READY, False, R.FILE_SYSTEM_FREEZING,
                 f"The virtual machine {vm['metadata']['name'] if vm else ''!r} is being frozen to take a snapshot.")
        else:
            _waiting(state)

    def _follow(self, state: State, volume: dict[str, Any]) -> None:
        vstatus = volume.get("status") or {}
        phase = vstatus.get("phase")
        state.status["volumeSnapshotName"] = volume["metadata"]["name"]
        if phase == VolumePhase.READY:
            state.status["phase"] = Phase.READY
            state.status["consistent"] = bool(vstatus.get("consistent", True))
            _set(state, READY, True, R.VIRTUAL_DISK_SNAPSHOT_READY)
        elif phase == VolumePhase.FAILED:
            cond = conditions.get_in(vstatus.get("conditions") or [], "Ready") or {}
            inconsistent = cond.get("reason") == VolumeReason.POTENTIALLY_INCONSISTENT
            _fail(state, R.POTENTIALLY_INCONSISTENT if inconsistent else R.VIRTUAL_DISK_SNAPSHOT_FAILED,
                  vstatus.get("message") or "the copy of the disk failed on its node")
        elif state.status.get("phase") != Phase.FAILED:
            state.status["phase"] = Phase.IN_PROGRESS
            _waiting(state)


def _waiting(state: State) -> None:
    _set(state, READY, False, R.SNAPSHOTTING,
         f"Waiting for the snapshot of virtual disk {state.spec.get('virtualDiskName')!r} to be ready to use.")


PHASE_EVENTS = PhaseEvents(warning=frozenset({Phase.FAILED.value}))


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, VIRTUAL_DISK_SNAPSHOTS, [InitHandler(), DiskHandler(), SnapshotHandler()],
                            failure_condition=READY, after=[PHASE_EVENTS])

    def snapshots_of_disk(disk: dict[str, Any]) -> list[tuple[str, str]]:
        ns = disk["metadata"].get("namespace", "")
        return [(ns, s["metadata"]["name"]) for s in ctx.informer(VIRTUAL_DISK_SNAPSHOTS).list(ns)
                if (s.get("spec") or {}).get("virtualDiskName") == disk["metadata"]["name"]
                and (s.get("status") or {}).get("phase") in (None, Phase.PENDING)]

    return reconciler, [
        Watch(VIRTUAL_DISK_SNAPSHOTS, lambda o: [own_key(o)]),
        Watch(VOLUMES, owners_of_kind("VirtualDiskSnapshot")),
        Watch(VIRTUAL_DISKS, snapshots_of_disk),
    ]
