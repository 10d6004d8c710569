"""The VirtualMachine reconciler. The handler chain, in order (each may stop it):

1. init        — the VM's conditions start Unknown; the cleanup finalizer is added;
2. deletion    — a deleted VM: its instance is deleted (the node handler removes the domain),
                 then the finalizer goes; the Auto address claim goes with the VM (owner);
3. class       — VirtualMachineClassReady and SizingPolicyMatched;
4. ipam        — VirtualMachineIPAddressReady (creating the Auto address claim);
5. blockdevices— BlockDevicesReady (disks and images exist and are ready, or wait for
                 the first consumer);
6. provisioning— ProvisioningReady (cloud-init user data, inline or from a Secret);
7. instance    — placement and the InternalVirtualMachineInstance (run state, power
                 requests, changes awaiting restart);
8. status      — phase, node, IP, guest OS, resources, Running and AgentReady, from the instance.
"""

from __future__ import annotations

from typing import Any

from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    INSTANCES,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS,
    VIRTUAL_MACHINE_CLASSES,
    VIRTUAL_MACHINE_IP_ADDRESSES,
    VIRTUAL_MACHINES,
)
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.common.kube.client import NODES
from controlplane.controllers.names import FINALIZER_VM
from controlplane.controllers.runtime import conditions
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, own_key, owners_of_kind
from controlplane.controllers.vm.instance import InstanceHandler
from controlplane.controllers.vm.prerequisites import (
    BlockDevicesHandler,
    ClassHandler,
    IPAddressHandler,
    ProvisioningHandler,
)
from controlplane.controllers.vm.status import StatusHandler

REPORTED = [C.Type.CLASS_READY, C.Type.IP_ADDRESS_READY, C.Type.BLOCK_DEVICES_READY, C.Type.PROVISIONING_READY,
            C.Type.RUNNING, C.Type.AGENT_READY]


class InitHandler:
    name = "init"

    def handle(self, state: State) -> None:
        conditions.init_unknown(state.status, list(REPORTED), generation=state.generation)
        if not state.deleting:
            state.add_finalizer(FINALIZER_VM)


class DeletionHandler:
    name = "deletion"

    def handle(self, state: State) -> None:
        if not state.deleting:
            return
        state.status["phase"] = "Terminating"
        inst = state.get(INSTANCES, state.name)
        if inst is not None:
            if not inst["metadata"].get("deletionTimestamp"):
                state.ctx.kube.delete_if_exists(INSTANCES, state.name, state.namespace)
            state.requeue(1)
        else:
            state.remove_finalizer(FINALIZER_VM)
        state.stop = True


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, VIRTUAL_MACHINES, [
        InitHandler(), DeletionHandler(), ClassHandler(), IPAddressHandler(), BlockDevicesHandler(),
        ProvisioningHandler(), InstanceHandler(), StatusHandler()])

    def vms_using(kind: str) -> Any:
        def keys(obj: dict[str, Any]) -> list[tuple[str, str]]:
            name, ns = obj["metadata"]["name"], obj["metadata"].get("namespace")
            out = []
            for vm in ctx.informer(VIRTUAL_MACHINES).list(ns):
                refs = [*((vm.get("spec") or {}).get("blockDeviceRefs") or []),
                        *((vm.get("status") or {}).get("blockDeviceRefs") or [])]
                if any(r.get("kind") == kind and r.get("name") == name for r in refs):
                    out.append(own_key(vm))
            return out
        return keys

    def vms_of_class(cls: dict[str, Any]) -> list[tuple[str, str]]:
        return [own_key(vm) for vm in ctx.informer(VIRTUAL_MACHINES).list()
                if (vm.get("spec") or {}).get("virtualMachineClassName") == cls["metadata"]["name"]]

    def vm_of_vmip(vmip: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vmip["metadata"].get("namespace", "")
        keys = owners_of_kind("VirtualMachine")(vmip)
        keys += [own_key(vm) for vm in ctx.informer(VIRTUAL_MACHINES).list(ns)
                 if (vm.get("spec") or {}).get("virtualMachineIPAddressName") == vmip["metadata"]["name"]]
        return list(keys)

    def pending_vms(_node: dict[str, Any]) -> list[tuple[str, str]]:
        return [own_key(vm) for vm in ctx.informer(VIRTUAL_MACHINES).list()
                if not (vm.get("status") or {}).get("nodeName")]

    watches = [
        Watch(VIRTUAL_MACHINES, lambda o: [own_key(o)]),
        Watch(INSTANCES, owners_of_kind("VirtualMachine")),
        Watch(VIRTUAL_DISKS, vms_using("VirtualDisk")),
        Watch(VIRTUAL_IMAGES, vms_using("VirtualImage")),
        Watch(CLUSTER_VIRTUAL_IMAGES, vms_using("ClusterVirtualImage")),
        Watch(VIRTUAL_MACHINE_CLASSES, vms_of_class),
        Watch(VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS,
              lambda b: [(b["metadata"].get("namespace", ""), (b.get("spec") or {}).get("virtualMachineName", ""))]),
        Watch(VIRTUAL_MACHINE_IP_ADDRESSES, vm_of_vmip),
        Watch(NODES, pending_vms, relevant=lambda o, old: old is None or
              (o.get("status") or {}).get("conditions") != (old.get("status") or {}).get("conditions")),
    ]
    return reconciler, watches
