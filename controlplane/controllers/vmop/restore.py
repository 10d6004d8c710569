"""VirtualMachineOperation `Restore`: the machine made again from one of its VirtualMachineSnapshots.

What the snapshot kept (its Secret, `snapshot/kept.py`) is the plan: the VirtualMachine's spec
and one disk per VirtualDiskSnapshot. `status.resources` lists every object the restore touches,
each with its own status and message. The modes, as DVP's user guide describes them:

- `DryRun`: only the plan and its conflicts, in `status.resources`; nothing changes; Completed
  (Failed when a conflict would stop a real restore);
- `Strict`: the snapshot exactly: disks the snapshot's VM used that other machines use now are
  conflicts that fail the operation; images the snapshot's VM used that are gone stay in its
  spec (the machine then waits for them, Pending);
- `BestEffort`: like Strict, but missing VirtualImage / ClusterVirtualImage block devices are
  dropped from the restored spec.

The VirtualMachineIPAddress the snapshot kept (`keepIPAddress`) is the machine's again: made again
(static, the address of snapshot time) when it is gone, a conflict when another machine holds it.

A real restore, level-triggered across cycles: the running machine is stopped (a Stop power
request) -> each disk is put back to its VirtualDiskSnapshot -> the machine's spec is replaced by
the kept one -> the machine is started again when it ran before -> Completed once the disks are
restored and Ready and the machine is back in its phase. "It ran before" is read from the VM:
its power request carries this operation's id (`<uid>-stop`, then `<uid>-start`) only when the
restore stopped it, and no other operation of the machine runs meanwhile (one at a time), so the
operation keeps no mark of its own and costs no metadata write.

A disk is put back in one of two ways:
- in place, when it is still the disk the snapshot kept (same spec and labels) and its volume is
  on the node of the snapshot's volume: its volume is asked to revert to the snapshot's
  (`spec.revert`, with this operation's uid; the node handler replaces the volume's file by a new
  overlay on the snapshot's file and says so in `status.reverted`). The disk object stays as it is.
  Should the node handler refuse (a running VM had the disk: someone started the machine after
  the restore stopped it), the restore fails saying so; a restore that fails takes back the
  reverts it asked for and that are not done, so that none happens later on a disk in use;
- otherwise as DVP does it: the disk is deleted and made again from its VirtualDiskSnapshot (same
  name, the kept labels and annotations, marked with this operation's uid).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINE_IP_ADDRESSES,
    VIRTUAL_MACHINE_SNAPSHOTS,
    VIRTUAL_MACHINES,
    VOLUMES,
)
from controlplane.api.v1alpha2 import VMOPCondition as C
from controlplane.api.v1alpha2 import VMOPPhase as Phase
from controlplane.api.volume import Revert, requested_revert, revert_patch, revert_refused, reverted
from controlplane.common.kube.client import SECRETS, KubeError
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.parallel import run_all
from controlplane.controllers.runtime.state import State
from controlplane.controllers.snapshot.kept import read_kept
from controlplane.controllers.vm import requests
from controlplane.controllers.vmop import outcome

R = C.CompletedReason
RESTORED_BY = "virtualization.deckhouse.io/restored-by"
API = VIRTUAL_MACHINES.api_version


def _entry(kind: str, name: str, status: str, message: str, api: str = API) -> dict[str, str]:
    return {"apiVersion": api, "kind": kind, "name": name, "status": status, "message": message}


class Refused(Exception):
    """The node handler refused a disk's revert: the restore fails, saying why."""


class Plan:
    """What the snapshot asks for, and what stands in its way."""

    def __init__(self, state: State, vm_name: str, snapshot: dict[str, Any], kept: dict[str, Any]) -> None:
        uid = snapshot["metadata"]["uid"]
        self.disks = {d["metadata"]["name"]: d for d in kept.get("vds") or []}
        self.snapshots = {n.removesuffix(f"-{uid}"): n for n in snapshot["status"].get("virtualDiskSnapshotNames") or []}
        self.spec: dict[str, Any] = dict((kept.get("vm") or {}).get("spec") or {})
        self.conflicts: list[dict[str, str]] = []
        self.missing: list[dict[str, str]] = []
        self.address: dict[str, Any] | None = kept.get("vmip")
        """The VirtualMachineIPAddress the snapshot kept (keepIPAddress): the machine gets it back."""
        if self.address is not None:
            ip_name = self.address["metadata"]["name"]
            current = state.get(VIRTUAL_MACHINE_IP_ADDRESSES, ip_name)
            holder = ((current or {}).get("status") or {}).get("virtualMachineName")
            if holder and holder != vm_name:
                self.conflicts.append(_entry("VirtualMachineIPAddress", ip_name, "Failed",
                                             f"the address is used by virtual machine {holder!r}"))
            self.spec["virtualMachineIPAddressName"] = ip_name
        for disk in self.snapshots:
            users = [vm["metadata"]["name"] for vm in state.lookup(
                indexes.VMS_BY_BLOCK_DEVICE, indexes.block_device("VirtualDisk", state.namespace, disk))
                if vm["metadata"]["name"] != vm_name]
            if users:
                self.conflicts.append(_entry("VirtualDisk", disk, "Failed",
                                             f"the disk is attached to virtual machine {users[0]!r}: detach it first"))
        for ref in self.spec.get("blockDeviceRefs") or []:
            res = {"VirtualImage": VIRTUAL_IMAGES, "ClusterVirtualImage": CLUSTER_VIRTUAL_IMAGES}.get(ref.get("kind"))
            if res is not None and state.get(res, ref.get("name", "")) is None:
                self.missing.append(_entry(str(ref["kind"]), str(ref.get("name", "")), "Failed",
                                           "does not exist: Strict keeps it (the machine waits for it), BestEffort "
                                           "drops it from the restored spec"))

    def spec_for(self, mode: str) -> dict[str, Any]:
        if mode != "BestEffort" or not self.missing:
            return self.spec
        gone = {(m["kind"], m["name"]) for m in self.missing}
        refs = [r for r in self.spec.get("blockDeviceRefs") or [] if (r.get("kind"), r.get("name")) not in gone]
        return {**self.spec, "blockDeviceRefs": refs}


class RestoreHandler:
    name = "restore"
    condition = C.Type.COMPLETED

    def handle(self, state: State) -> None:
        if state.spec.get("type") != "Restore" or state.status.get("phase") not in (Phase.PENDING, Phase.IN_PROGRESS):
            return
        try:
            self._handle(state)
        except Refused as exc:
            outcome.finish(state, False, str(exc))
        if state.status.get("phase") == Phase.FAILED:
            self._withdraw(state)

    @staticmethod
    def _withdraw(state: State) -> None:
        """A failed restore takes back the reverts it asked for that are not done: none of them
        may happen later, when the machine has run on."""
        for volume in state.list(VOLUMES, state.namespace):
            revert = requested_revert(volume)
            if revert is not None and revert.id == state.uid and reverted(volume) != state.uid:
                state.ctx.kube.patch(VOLUMES, volume["metadata"]["name"], {"spec": {"revert": None}}, state.namespace)

    def _handle(self, state: State) -> None:
        state.stop = True  # the power handlers after this one are not for a restore
        opts = state.spec.get("restore") or {}
        mode, vm_name = opts.get("mode", "Strict"), state.spec.get("virtualMachineName", "")
        snapshot = state.get(VIRTUAL_MACHINE_SNAPSHOTS, opts.get("virtualMachineSnapshotName", ""))
        if snapshot is None or (snapshot.get("status") or {}).get("phase") != "Ready":
            what = "does not exist" if snapshot is None else f"is {(snapshot.get('status') or {}).get('phase')}"
            return outcome.finish(state, False, f"VirtualMachineSnapshot {opts.get('virtualMachineSnapshotName')!r} {what}: "
                                         "name a Ready snapshot of the machine in spec.restore.virtualMachineSnapshotName")
        secret = state.get(SECRETS, snapshot["status"].get("virtualMachineSnapshotSecretName") or "")
        kept = read_kept(secret) if secret else {}
        if (kept.get("vm") or {}).get("metadata", {}).get("name") != vm_name:
            return outcome.finish(state, False, f"VirtualMachineSnapshot {snapshot['metadata']['name']!r} is not a snapshot "
                                         f"of virtual machine {vm_name!r} (or its kept manifests are gone)")
        plan = Plan(state, vm_name, snapshot, kept)
        if mode == "DryRun":
            state.status["resources"] = (self._resources(vm_name, plan, "Completed", "would be restored")
                                         + plan.conflicts + plan.missing)
            return outcome.finish(state, not plan.conflicts, "dry run: " + ("the restore would succeed" if not plan.conflicts
                                                                     else "conflicts would stop the restore"))
        if plan.conflicts:
            state.status["resources"] = plan.conflicts
            return outcome.finish(state, False, "conflicts stop the restore: " + "; ".join(
                f"{c['kind']} {c['name']}: {c['message']}" for c in plan.conflicts))
        if state.status["phase"] == Phase.PENDING:
            state.status["phase"] = Phase.IN_PROGRESS
            outcome.progress(state, False, R.RESTORE_IN_PROGRESS, f"restoring {vm_name} from {snapshot['metadata']['name']}")
        self._run(state, vm_name, mode, plan)

    @staticmethod
    def _resources(vm_name: str, plan: Plan, status: str, message: str) -> list[dict[str, str]]:
        return [_entry("VirtualMachine", vm_name, status, message)] + [
            _entry("VirtualDisk", d, status, f"{message} from VirtualDiskSnapshot {s}") for d, s in plan.snapshots.items()]

    def _run(self, state: State, vm_name: str, mode: str, plan: Plan) -> None:
        vm = state.get(VIRTUAL_MACHINES, vm_name)
        if vm is None:
            return outcome.finish(state, False, f"VirtualMachine {vm_name!r} was deleted during the restore")
        phase = (vm.get("status") or {}).get("phase")
        resources = self._resources(vm_name, plan, "InProgress", "restoring")
        state.status["resources"] = resources
        state.requeue(state.ctx.runtime.requeue_progress)
        restored = ((vm.get("metadata") or {}).get("annotations") or {}).get(RESTORED_BY) == state.uid
        if not restored and phase not in ("Stopped", "Pending", None):
            self._power(state, vm_name, "Stop")
            outcome.progress(state, False, R.RESTORE_IN_PROGRESS, f"stopping {vm_name} to restore its disks")
            return
        # the disks' writes go out together, the machine's spec after them: the node handler
        # reverts the disks while the spec is written, instead of its requests queueing behind
        # it at the API server; the cycle then reports as the next one would, so that one writes
        # nothing new
        disks = list(plan.snapshots.items())
        for disk, _ in disks:  # before anything is written: a refused disk fails the restore as it stands
            self._refused(state, disk, state.get(VOLUMES, disk))
        calls: list[Callable[[], tuple[bool, bool]]] = [partial(self._disk, state, disk, snap, plan.disks.get(disk))
                                                        for disk, snap in disks]
        outcomes = run_all(calls)
        if not restored:
            self._respec(state, vm, plan, mode)
        disks_done = [done for done, _ in outcomes]
        if not all(disks_done) and all(done or in_place for done, in_place in outcomes):
            # In-place reverts end within milliseconds of each other: while only such are left, the
            # end of one is not written on its own (one write less on the way to Completed, and
            # stale at once); a disk made again from its snapshot (a copy) is reported as it ends,
            # and nothing reported before is taken back.
            told = {r.get("name") for r in (state.current.get("status") or {}).get("resources") or []
                    if r.get("kind") == "VirtualDisk" and r.get("status") == "Completed"}
            disks_done = [done and (not in_place or disk in told)
                          for (disk, _), (done, in_place) in zip(disks, outcomes, strict=True)]
        for i, ((_, snap), ok) in enumerate(zip(disks, disks_done, strict=True), start=1):
            resources[i].update(status="Completed" if ok else "InProgress",
                                message=f"restored from VirtualDiskSnapshot {snap}" if ok else "restoring")
        ready = sum(disks_done)
        resources[0].update(status="Completed", message="spec restored")
        if ready < len(plan.snapshots):
            outcome.progress(state, False, R.RESTORE_IN_PROGRESS, f"disks restored: {ready}/{len(plan.snapshots)}")
            return
        if self._stopped_by(state, vm) and phase != "Running":
            if phase in ("Stopped", None):
                self._power(state, vm_name, "Start")
            outcome.progress(state, False, R.RESTORE_IN_PROGRESS, f"starting {vm_name} again")
            return
        skipped = [f"{m['kind']} {m['name']}" for m in plan.missing] if mode == "BestEffort" else []
        outcome.finish(state, True, f"{vm_name} restored from {state.spec['restore']['virtualMachineSnapshotName']}"
                + (f"; dropped missing {', '.join(skipped)}" if skipped else ""))

    @staticmethod
    def _request_id(state: State, action: str) -> str:
        """The id of this operation's power request `action` (Stop, Start) to the machine."""
        return f"{state.uid}-{action.lower()}"

    @staticmethod
    def _stopped_by(state: State, vm: dict[str, Any]) -> bool:
        """Whether this restore stopped the machine (its power request is this operation's)."""
        return (requests.read(vm) or {}).get("id") in (RestoreHandler._request_id(state, "Stop"),
                                                        RestoreHandler._request_id(state, "Start"))

    @staticmethod
    def _respec(state: State, vm: dict[str, Any], plan: Plan, mode: str) -> tuple[bool, bool]:
        """The machine's spec replaced by the kept one, marked with this operation's uid."""
        RestoreHandler._address(state, plan)
        body = {**vm, "spec": plan.spec_for(mode)}
        body["metadata"] = {**vm["metadata"], "annotations": {**(vm["metadata"].get("annotations") or {}),
                                                              RESTORED_BY: state.uid}}
        state.ctx.kube.replace(VIRTUAL_MACHINES, body)
        return True, True

    @staticmethod
    def _address(state: State, plan: Plan) -> None:
        """The kept address, made again when it is gone (a static one of snapshot time)."""
        if plan.address is None or state.get(VIRTUAL_MACHINE_IP_ADDRESSES, plan.address["metadata"]["name"]):
            return
        meta = plan.address["metadata"]
        try:
            state.ctx.kube.create(VIRTUAL_MACHINE_IP_ADDRESSES, {
                "apiVersion": VIRTUAL_MACHINE_IP_ADDRESSES.api_version, "kind": VIRTUAL_MACHINE_IP_ADDRESSES.kind,
                "metadata": {"name": meta["name"], "namespace": state.namespace, "labels": meta.get("labels") or {}},
                "spec": plan.address.get("spec") or {}})
        except KubeError as exc:
            if not exc.already_exists:
                raise

    @staticmethod
    def _power(state: State, vm_name: str, action: str) -> None:
        rid = RestoreHandler._request_id(state, action)
        vm = state.get(VIRTUAL_MACHINES, vm_name) or {}
        if (requests.read(vm) or {}).get("id") == rid:
            return
        value = requests.encode(id=rid, action=action, force=action == "Stop")
        state.ctx.kube.patch(VIRTUAL_MACHINES, vm_name, {"metadata": {"annotations": {requests.ANNOTATION: value}}},
                             state.namespace)

    @staticmethod
    def _disk(state: State, name: str, snapshot: str, kept: dict[str, Any] | None) -> tuple[bool, bool]:
        """One disk made again from its snapshot: (Ready, put back in place rather than copied)."""
        disk = state.get(VIRTUAL_DISKS, name)
        if disk is not None and ((disk.get("metadata") or {}).get("annotations") or {}).get(RESTORED_BY) == state.uid:
            return (disk.get("status") or {}).get("phase") == "Ready", False
        if disk is not None and not disk["metadata"].get("deletionTimestamp"):
            in_place = RestoreHandler._revert(state, disk, snapshot, kept)
            if in_place is not None:
                return in_place, True
        if disk is not None:
            if not disk["metadata"].get("deletionTimestamp"):
                state.ctx.kube.delete_if_exists(VIRTUAL_DISKS, name, state.namespace)
            return False, False
        meta = (kept or {}).get("metadata") or {}
        spec: dict[str, Any] = {"dataSource": {"type": "ObjectRef",
                                               "objectRef": {"kind": "VirtualDiskSnapshot", "name": snapshot}}}
        pvc = ((kept or {}).get("spec") or {}).get("persistentVolumeClaim")
        if pvc:
            spec["persistentVolumeClaim"] = pvc
        try:
            state.ctx.kube.create(VIRTUAL_DISKS, {
                "apiVersion": VIRTUAL_DISKS.api_version, "kind": VIRTUAL_DISKS.kind,
                "metadata": {"name": name, "namespace": state.namespace, "labels": meta.get("labels") or {},
                             "annotations": {**(meta.get("annotations") or {}), RESTORED_BY: state.uid}},
                "spec": spec})
        except KubeError as exc:
            if not exc.already_exists:
                raise
        return False, False

    @staticmethod
    def _refused(state: State, name: str, volume: dict[str, Any] | None) -> None:
        if volume is not None and revert_refused(volume) == state.uid:
            raise Refused(f"VirtualDisk {name!r} was not put back: {(volume.get('status') or {}).get('message')}")

    @staticmethod
    def _revert(state: State, disk: dict[str, Any], snapshot: str, kept: dict[str, Any] | None) -> bool | None:
        """The disk put back in place (True once done and Ready), or None when it cannot be: not
        the disk the snapshot kept, or no volume on the snapshot volume's node."""
        name = disk["metadata"]["name"]
        if kept is None or kept.get("spec") != disk.get("spec") or \
                ((kept.get("metadata") or {}).get("labels") or {}) != (disk["metadata"].get("labels") or {}):
            return None
        snap_volume_name = ((state.get(VIRTUAL_DISK_SNAPSHOTS, snapshot) or {}).get("status") or {}).get(
            "volumeSnapshotName") or ""
        snap_volume, volume = state.get(VOLUMES, snap_volume_name), state.get(VOLUMES, name)
        if snap_volume is None or volume is None or volume["metadata"].get("deletionTimestamp") or \
                (volume.get("spec") or {}).get("nodeName") != (snap_volume.get("spec") or {}).get("nodeName"):
            return None
        if reverted(volume) == state.uid:
            return (volume.get("status") or {}).get("phase") == "Ready"
        want = Revert(snap_volume_name, state.uid)
        if requested_revert(volume) != want:
            state.ctx.kube.patch(VOLUMES, name, revert_patch(want), state.namespace)
        return False
