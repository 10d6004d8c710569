"""VirtualMachineOperation `Clone`: a new machine from a temporary VirtualMachineSnapshot of this
one (`vmop-<operation uid>`, owned by the operation, requiredConsistency as DVP takes it,
keepIPAddress Never), built by `snapshot/clone.py` (names, new IP and MACs, modes). Once the
clone's disks are Ready the operation is Completed, and the cycle after that deletes the temporary
snapshot (`DropTemporarySnapshot`; the disks are copies: they do not need it).
`DryRun` plans from the live machine and takes no snapshot.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_MACHINE_SNAPSHOTS, VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import VMOPCondition as C
from controlplane.api.v1alpha2 import VMOPPhase as Phase
from controlplane.common.kube.client import SECRETS, KubeError
from controlplane.controllers.runtime.state import State
from controlplane.controllers.snapshot import kept as kept_mod
from controlplane.controllers.snapshot.clone import ClonePlan
from controlplane.controllers.snapshot.vmsnapshot import vm_disks
from controlplane.controllers.vmop import outcome

R = C.CompletedReason


def snapshot_name(state: State) -> str:
    return f"vmop-{state.uid}"


class CloneHandler:
    name = "clone"
    condition = C.Type.COMPLETED

    def handle(self, state: State) -> None:
        if state.spec.get("type") != "Clone" or state.status.get("phase") not in (Phase.PENDING, Phase.IN_PROGRESS):
            return
        state.stop = True
        opts = state.spec.get("clone") or {}
        vm_name = state.spec.get("virtualMachineName", "")
        vm = state.get(VIRTUAL_MACHINES, vm_name)
        if vm is None:
            return outcome.finish(state, False, f"VirtualMachine {vm_name!r} does not exist")
        if opts.get("mode") == "DryRun":
            return self._dry_run(state, vm, opts)
        if state.status["phase"] == Phase.PENDING:
            state.status["phase"] = Phase.IN_PROGRESS
        state.requeue(state.ctx.runtime.requeue_progress)
        snap = state.get(VIRTUAL_MACHINE_SNAPSHOTS, snapshot_name(state))
        if snap is None:
            if state.status.get("resources"):  # made the clone already, then dropped the snapshot
                return outcome.finish(state, True, f"{vm_name} cloned")
            self._snapshot(state, vm_name)
            return outcome.progress(state, False, R.CLONE_IN_PROGRESS, f"taking a snapshot of {vm_name}")
        phase = (snap.get("status") or {}).get("phase")
        if phase == "Failed":
            why = (conditions.get_in(snap["status"].get("conditions") or [], "VirtualMachineSnapshotReady") or {})
            return outcome.finish(state, False, f"the snapshot of {vm_name} failed: {why.get('message') or 'see it'}")
        if phase != "Ready":
            return outcome.progress(state, False, R.CLONE_IN_PROGRESS, f"taking a snapshot of {vm_name}")
        secret = state.get(SECRETS, snap["status"].get("virtualMachineSnapshotSecretName") or "")
        plan = ClonePlan(state, snap, kept_mod.read_kept(secret) if secret else {}, opts)
        if plan.conflicts:
            state.status["resources"] = plan.conflicts
            return outcome.finish(state, False, "conflicts stop the clone: " + "; ".join(c["message"] for c in plan.conflicts))
        done = plan.apply(state)
        state.status["resources"] = plan.resources("Completed" if done else "InProgress",
                                                   "created" if done else "creating")
        if not done:
            return outcome.progress(state, False, R.CLONE_IN_PROGRESS, f"making {plan.vm_name} and its disks")
        outcome.finish(state, True, f"{vm_name} cloned as {plan.vm_name}")
        state.requeue(0)  # the next cycle drops the temporary snapshot (DropTemporarySnapshot)

    @staticmethod
    def _dry_run(state: State, vm: dict[str, Any], opts: dict[str, Any]) -> None:
        data, _ = kept_mod.collect(state, vm)
        fake = {"metadata": {"uid": "dryrun"},
                "status": {"virtualDiskSnapshotNames": [f"{d}-dryrun" for d in vm_disks(vm)]}}
        plan = ClonePlan(state, fake, data, opts)
        state.status["resources"] = plan.resources("Completed", "would be created") + plan.conflicts + plan.missing
        outcome.finish(state, not plan.conflicts, "dry run: " + ("the clone would succeed" if not plan.conflicts
                                                          else "conflicts would stop the clone"))

    @staticmethod
    def _snapshot(state: State, vm_name: str) -> None:
        try:
            state.ctx.kube.create(VIRTUAL_MACHINE_SNAPSHOTS, {
                "apiVersion": VIRTUAL_MACHINE_SNAPSHOTS.api_version, "kind": VIRTUAL_MACHINE_SNAPSHOTS.kind,
                "metadata": {"name": snapshot_name(state), "namespace": state.namespace,
                             "ownerReferences": [state.owner_ref()]},
                "spec": {"virtualMachineName": vm_name, "requiredConsistency": True, "keepIPAddress": "Never"}})
        except KubeError as exc:
            if not exc.already_exists:
                raise


class DropTemporarySnapshot:
    """Run after the chain (finished operations stop it early): a clone whose Completed is stored
    has its temporary snapshot deleted, so Completed waits for no delete."""

    name = "clone-snapshot"

    def handle(self, state: State) -> None:
        stored = (state.current.get("status") or {}).get("phase")
        if state.spec.get("type") != "Clone" or stored != Phase.COMPLETED:
            return
        snap = state.get(VIRTUAL_MACHINE_SNAPSHOTS, snapshot_name(state))
        if snap is not None and not snap["metadata"].get("deletionTimestamp"):
            state.ctx.kube.delete_if_exists(VIRTUAL_MACHINE_SNAPSHOTS, snapshot_name(state), state.namespace)
