"""The VirtualDisk reconciler. Handlers in order:

1. init      — conditions start Unknown; the protection finalizer;
2. usage     — which VMs use the disk (`attachedToVirtualMachines`, InUse);
3. deletion  — a deleted disk waits while a VM uses it, then its volume is deleted (the
               node handler removes the file), then the finalizer goes;
4. source    — the data source: none (empty, size required), an image (must be Ready; the
               size defaults to the image's), or HTTP/ContainerImage/Upload (imported into
               DVCR first, as a private image of the disk);
5. volume    — a disk from a VirtualDiskSnapshot is made at once on the snapshot's node;
               others wait (WaitForFirstConsumer) until a VM using the disk is placed; then an
               InternalVirtualDiskVolume on that VM's node; Provisioning -> Ready; growing
               `spec.persistentVolumeClaim.size` resizes it (online when the VM runs);
               shrinking is refused.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINES,
    VOLUMES,
)
from controlplane.api.v1alpha2 import DiskPhase as Phase
from controlplane.api.v1alpha2 import VDCondition as C
from controlplane.api.volume import VolumeSpec, size_patch
from controlplane.common import quantity
from controlplane.common.kube.client import KubeError
from controlplane.controllers.disk import sources
from controlplane.controllers.dvcr_access import DvcrApi, Importer
from controlplane.controllers.names import FINALIZER_VD_PROTECTION
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, own_key, owners_of_kind


def _set(state: State, type_: str, ok: bool | str, reason: str, message: str = "") -> None:
    conditions.set_condition(state.status, type_, ok, reason, message, generation=state.generation)


def users(state: State) -> list[dict[str, Any]]:
    return state.lookup(indexes.VMS_BY_BLOCK_DEVICE, indexes.block_device("VirtualDisk", state.namespace, state.name))


class InitHandler:
    name = "init"

    def handle(self, state: State) -> None:
        conditions.init_unknown(state.status, [C.Type.DATASOURCE_READY, C.Type.READY], generation=state.generation)
        if not state.deleting:
            state.add_finalizer(FINALIZER_VD_PROTECTION)


class UsageHandler:
    name = "usage"

    def handle(self, state: State) -> None:
        vms = users(state)
        state.status["attachedToVirtualMachines"] = [
            {"name": vm["metadata"]["name"], "mounted": (vm.get("status") or {}).get("phase") in ("Running", "Stopping")}
            for vm in vms]
        if vms:
            _set(state, C.Type.IN_USE, True, C.InUseReason.ATTACHED_TO_VIRTUAL_MACHINE,
                 "used by " + ", ".join(vm["metadata"]["name"] for vm in vms))
        else:
            conditions.remove(state.status, C.Type.IN_USE)


class DeletionHandler:
    name = "deletion"

    def __init__(self, disk_sources: sources.DiskSources) -> None:
        self.sources = disk_sources

    def handle(self, state: State) -> None:
        if not state.deleting:
            return
        state.status["phase"] = Phase.TERMINATING
        state.stop = True
        running = [vm["metadata"]["name"] for vm in users(state)
                   if (vm.get("status") or {}).get("phase") not in (None, "Pending", "Stopped")]
        if running:
            _set(state, C.Type.READY, False, C.ReadyReason.READY,
                 f"deletion waits until the disk is detached from: {', '.join(running)}")
            return
        volume = state.get(VOLUMES, state.name)
        if volume is not None:
            if not volume["metadata"].get("deletionTimestamp"):
                state.ctx.kube.delete_if_exists(VOLUMES, state.name, state.namespace)
            state.requeue(state.ctx.runtime.requeue_soon)
            return
        self.sources.cleanup(state)
        state.remove_finalizer(FINALIZER_VD_PROTECTION)


class SourceHandler:
    name = "source"

    def __init__(self, disk_sources: sources.DiskSources) -> None:
        self.sources = disk_sources

    def handle(self, state: State) -> None:
        src = self.sources.resolve(state)
        state.scratch["source"] = src
        if src.problem:
            _set(state, C.Type.DATASOURCE_READY, False, src.reason, src.problem)
            if src.failed:
                state.status["phase"] = Phase.FAILED
                _set(state, C.Type.READY, False, C.ReadyReason.PROVISIONING_FAILED, src.problem)
            elif src.waiting_upload:
                state.status["phase"] = Phase.WAIT_FOR_USER_UPLOAD
                _set(state, C.Type.READY, False, C.ReadyReason.WAIT_FOR_USER_UPLOAD, src.problem)
            else:
                state.status["phase"] = Phase.PENDING if not src.importing else Phase.PROVISIONING
                _set(state, C.Type.READY, False, C.ReadyReason.PROVISIONING if src.importing
                     else C.ReadyReason.DATASOURCE_IS_NOT_READY, src.problem)
            state.stop = True
            return
        _set(state, C.Type.DATASOURCE_READY, True, C.DatasourceReadyReason.DATASOURCE_READY)


class VolumeHandler:
    name = "volume"

    def handle(self, state: State) -> None:
        src: sources.Source = state.scratch["source"]
        wanted = (state.spec.get("persistentVolumeClaim") or {}).get("size")
        size = quantity.to_bytes(wanted) if wanted else src.size
        if not size:
            state.status["phase"] = Phase.PENDING
            _set(state, C.Type.READY, False, C.ReadyReason.PROVISIONING_NOT_STARTED,
                 "spec.persistentVolumeClaim.size is required for an empty disk")
            return
        if src.size and size < src.size:
            state.status["phase"] = Phase.PENDING
            _set(state, C.Type.READY, False, C.ReadyReason.PROVISIONING_NOT_STARTED,
                 f"spec.persistentVolumeClaim.size {wanted} is smaller than the image's unpacked size "
                 f"{quantity.format_bytes(src.size) if src.size % 1024 == 0 else src.size}")
            return
        volume = state.get(VOLUMES, state.name)
        if volume is None:
            self._create(state, src, size)
            return
        self._follow(state, volume, size)

    def _create(self, state: State, src: sources.Source, size: int) -> None:
        placed = [vm for vm in users(state) if (vm.get("status") or {}).get("nodeName")]
        if src.node:  # a snapshot's data lives on its node: the disk is made there at once
            placed = [{"status": {"nodeName": src.node}}]
        if not placed:
            state.status["phase"] = Phase.WAIT_FOR_FIRST_CONSUMER
            _set(state, C.Type.READY, False, C.ReadyReason.WAITING_FOR_FIRST_CONSUMER,
                 "the disk is created on the node of the first virtual machine that uses it")
            return
        node = placed[0]["status"]["nodeName"]
        spec = VolumeSpec(node_name=node, size_bytes=size, image_ref=src.image_ref or None,
                          source_volume=src.source_volume or None, take_source=src.take_source)
        try:
            state.ctx.kube.create(VOLUMES, spec.new_object(state.name, state.namespace, state.owner_ref()))
        except KubeError as exc:
            if not exc.already_exists:
                raise
        state.status["phase"] = Phase.PROVISIONING
        state.status["progress"] = "0%"
        _set(state, C.Type.READY, False, C.ReadyReason.PROVISIONING, f"provisioning on node {node}")
        state.status["observedGeneration"] = state.generation  # as `_follow` says it: no write of its own next cycle

    def _follow(self, state: State, volume: dict[str, Any], size: int) -> None:
        vstatus = volume.get("status") or {}
        current = quantity.to_bytes((volume.get("spec") or {}).get("size") or 0)
        if size > current:
            state.ctx.kube.patch(VOLUMES, state.name, size_patch(size), state.namespace)
            state.status["phase"] = Phase.RESIZING
            _set(state, C.Type.RESIZING, True, C.ResizingReason.IN_PROGRESS,
                 f"growing from {quantity.format_bytes(current)} to {quantity.format_bytes(size)}")
            return
        if size < current:
            _set(state, C.Type.RESIZING, False, C.ResizingReason.NOT_AVAILABLE,
                 f"shrinking from {quantity.format_bytes(current)} to {quantity.format_bytes(size)} is refused; "
                 f"the disk keeps {quantity.format_bytes(current)}")
        phase = vstatus.get("phase")
        if vstatus.get("progress"):
            state.status["progress"] = vstatus["progress"]
        if phase == "Ready" and int(vstatus.get("capacityBytes") or 0) >= current:
            state.status["phase"] = Phase.READY
            state.status["capacity"] = vstatus.get("capacity") or quantity.format_bytes(current)
            state.status["progress"] = "100%"
            if size >= current:
                conditions.remove(state.status, C.Type.RESIZING)
            state.status["target"] = {"persistentVolumeClaimName": state.name}
            _set(state, C.Type.READY, True, C.ReadyReason.READY, f"on node {volume['spec']['nodeName']}")
        elif phase == "Failed":
            state.status["phase"] = Phase.FAILED
            _set(state, C.Type.READY, False, C.ReadyReason.PROVISIONING_FAILED, vstatus.get("message") or "failed")
        elif phase in ("Resizing",) or (phase == "Ready" and int(vstatus.get("capacityBytes") or 0) < current):
            state.status["phase"] = Phase.RESIZING
        else:
            state.status["phase"] = Phase.PROVISIONING
            _set(state, C.Type.READY, False, C.ReadyReason.PROVISIONING,
                 vstatus.get("message") or f"provisioning on node {volume['spec']['nodeName']}")
        state.status["observedGeneration"] = state.generation


def _vm_as_disk_sees_it(vm: dict[str, Any]) -> tuple[Any, ...]:
    """What the disk's handlers read of a VM that uses it: the disks it names (not their sizes
    or attachment, which change as the disk itself does), its node, and whether it holds the
    disk (UsageHandler's `mounted`, DeletionHandler's wait)."""
    spec, status = vm.get("spec") or {}, vm.get("status") or {}
    refs = frozenset((r.get("kind"), r.get("name")) for r in [*(spec.get("blockDeviceRefs") or []),
                                                             *(status.get("blockDeviceRefs") or [])])
    phase = status.get("phase")
    return (refs, status.get("nodeName"), phase in ("Running", "Stopping"), phase not in (None, "Pending", "Stopped"),
            (vm.get("metadata") or {}).get("deletionTimestamp"))


def vm_seen_by_disk_changed(vm: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """`relevant` of the disk's VM watch: a VM's change that a disk using it can see."""
    return old is None or _vm_as_disk_sees_it(vm) != _vm_as_disk_sees_it(old)


PHASE_EVENTS = PhaseEvents(warning=frozenset({Phase.FAILED.value, Phase.PVC_LOST.value}))


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    importer = Importer(ctx.settings, on_change=lambda key: ctx.enqueue(VIRTUAL_DISKS, (key[1], key[2])))
    disk_sources = sources.DiskSources(importer, DvcrApi(ctx.settings))
    reconciler = Reconciler(ctx, VIRTUAL_DISKS, [InitHandler(), UsageHandler(), DeletionHandler(disk_sources),
                                                 SourceHandler(disk_sources), VolumeHandler()],
                            failure_condition=C.Type.READY,
                            after=[PHASE_EVENTS], drop_echoes=True)

    def disks_of_vm(vm: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vm["metadata"].get("namespace", "")
        refs = [*((vm.get("spec") or {}).get("blockDeviceRefs") or []),
                *((vm.get("status") or {}).get("blockDeviceRefs") or [])]
        return [(ns, r["name"]) for r in refs if r.get("kind") == "VirtualDisk" and r.get("name")]

    def disks_from_image(kind: str) -> Any:
        def keys(image: dict[str, Any]) -> list[tuple[str, str]]:
            value = indexes.block_device(kind, image["metadata"].get("namespace") or "", image["metadata"]["name"])
            return indexes.keys(ctx, indexes.DISKS_BY_IMAGE, value)
        return keys

    return reconciler, [
        Watch(VIRTUAL_DISKS, lambda o: [own_key(o)]),
        Watch(VOLUMES, owners_of_kind("VirtualDisk")),
        # a disk reads of its VMs only which disks they name, where they are placed and whether they run
        Watch(VIRTUAL_MACHINES, disks_of_vm, relevant=vm_seen_by_disk_changed),
        Watch(VIRTUAL_IMAGES, disks_from_image("VirtualImage")),
        Watch(CLUSTER_VIRTUAL_IMAGES, disks_from_image("ClusterVirtualImage")),
        Watch(VIRTUAL_DISK_SNAPSHOTS, disks_from_image("VirtualDiskSnapshot")),
    ]
