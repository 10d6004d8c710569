"""The VirtualMachineBlockDeviceAttachment reconciler. The VM controller does the attaching
(it lists the attachments that name its machine and hot-plugs their devices into the
instance); this reconciler reports it and holds deletion until the device is detached.

Handlers in order: init (conditions, finalizer) -> deletion (wait for the detach) ->
checks (the machine and the device exist and are ready; the device is not already one of
the machine's own) -> phase (Pending/InProgress/Attached/Failed from the VM's status)."""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS as VMBDAS,
)
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import BlockDeviceAttachmentPhase as Phase
from controlplane.api.v1alpha2 import VMBDACondition as C
from controlplane.controllers.names import FINALIZER_VMBDA
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, own_key
from controlplane.controllers.vm.prerequisites import resolve_device


def _set(state: State, type_: str, ok: bool, reason: str, message: str = "") -> None:
    conditions.set_condition(state.status, type_, ok, reason, message, generation=state.generation)


def entry_in_vm(vm: dict[str, Any] | None, vmbda_name: str) -> dict[str, Any] | None:
    return next((d for d in ((vm or {}).get("status") or {}).get("blockDeviceRefs") or []
                 if d.get("virtualMachineBlockDeviceAttachmentName") == vmbda_name), None)


class Steps:
    name = "vmbda"

    def handle(self, state: State) -> None:
        conditions.init_unknown(state.status, [C.Type.BLOCK_DEVICE_READY, C.Type.VIRTUAL_MACHINE_READY,
                                               C.Type.ATTACHED], generation=state.generation)
        vm_name = state.spec.get("virtualMachineName", "")
        state.status["virtualMachineName"] = vm_name
        vm = state.get(VIRTUAL_MACHINES, vm_name)
        entry = entry_in_vm(vm, state.name)
        if state.deleting:
            state.status["phase"] = Phase.TERMINATING
            if entry is None or not entry.get("attached"):
                state.remove_finalizer(FINALIZER_VMBDA)
            return
        state.add_finalizer(FINALIZER_VMBDA)
        if vm is None:
            _set(state, C.Type.VIRTUAL_MACHINE_READY, False, C.VirtualMachineReadyReason.VIRTUAL_MACHINE_NOT_READY,
                 f"VirtualMachine {vm_name!r} does not exist: name an existing VirtualMachine of this namespace "
                 "in spec.virtualMachineName")
            state.status["phase"] = Phase.PENDING
            return
        running = (vm.get("status") or {}).get("phase") == "Running"
        _set(state, C.Type.VIRTUAL_MACHINE_READY, running,
             C.VirtualMachineReadyReason.VIRTUAL_MACHINE_READY if running
             else C.VirtualMachineReadyReason.VIRTUAL_MACHINE_NOT_READY,
             "" if running else f"VirtualMachine {vm_name!r} is {(vm.get('status') or {}).get('phase') or 'Pending'}")
        ref = state.spec.get("blockDeviceRef") or {}
        own = [(r.get("kind"), r.get("name")) for r in (vm.get("spec") or {}).get("blockDeviceRefs") or []]
        if (ref.get("kind"), ref.get("name")) in own:
            _set(state, C.Type.ATTACHED, False, C.AttachedReason.CONFLICT,
                 f"{ref.get('kind')} {ref.get('name')!r} is already in the machine's spec.blockDeviceRefs")
            state.status["phase"] = Phase.FAILED
            return
        _obj, why = resolve_device(state, ref)
        _set(state, C.Type.BLOCK_DEVICE_READY, not why,
             C.BlockDeviceReadyReason.BLOCK_DEVICE_NOT_READY if why else C.BlockDeviceReadyReason.BLOCK_DEVICE_READY,
             why)
        if entry is not None and entry.get("attached"):
            state.status["phase"] = Phase.ATTACHED
            _set(state, C.Type.ATTACHED, True, C.AttachedReason.ATTACHED, f"attached to {vm_name}")
        elif running and not why:
            state.status["phase"] = Phase.IN_PROGRESS
            _set(state, C.Type.ATTACHED, False, C.AttachedReason.ATTACHMENT_REQUEST_SENT, "hot-plugging the device")
        else:
            state.status["phase"] = Phase.PENDING
            _set(state, C.Type.ATTACHED, False, C.AttachedReason.NOT_ATTACHED, why or "waiting for the machine to run")
        state.status["observedGeneration"] = state.generation


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    def of_vm(vm: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vm["metadata"].get("namespace", "")
        return indexes.keys(ctx, indexes.ATTACHMENTS_BY_VM, f"{ns}/{vm['metadata']['name']}")

    return Reconciler(ctx, VMBDAS, [Steps()], failure_condition=C.Type.ATTACHED), [Watch(VMBDAS, lambda o: [own_key(o)]), Watch(VIRTUAL_MACHINES, of_vm)]
