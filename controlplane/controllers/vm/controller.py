"""The VirtualMachine reconciler. The handler chain, in order (each may stop it):

1. init        — the VM's conditions start Unknown; the cleanup finalizer is added;
2. deletion    — a deleted VM: its instance is deleted (the node handler removes the domain),
                 then the finalizer goes; the Auto address claim goes with the VM (owner);
3. class       — VirtualMachineClassReady and SizingPolicyMatched;
4. ipam        — VirtualMachineIPAddressReady (creating the Auto address claim);
4b. mac        — VirtualMachineMACAddressReady (a VirtualMachineMACAddress per interface, vm/mac.py);
5. blockdevices— BlockDevicesReady (disks and images exist and are ready, or wait for
                 the first consumer);
6. provisioning— ProvisioningReady (cloud-init user data, inline or from a Secret);
6b. usb         — USBDevicesReady and status.usbDevices (vm/usb.py); never holds the VM back;
7. instance    — placement and the InternalVirtualMachineInstance (run state, power
                 requests, changes awaiting restart);
8. status      — phase, node, IP, guest OS, resources, Running and AgentReady, from the instance;
9. nodehealth  — Running=Unknown naming the node when the VM's node is lost or gone.
10. migration  — migrationState, phase Migrating, Migratable (vm/migration_status.py).
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    INSTANCES,
    USB_DEVICES,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS,
    VIRTUAL_MACHINE_CLASSES,
    VIRTUAL_MACHINE_IP_ADDRESSES,
    VIRTUAL_MACHINE_MAC_ADDRESSES,
    VIRTUAL_MACHINES,
    VOLUMES,
)
from controlplane.api.v1alpha2 import MachinePhase
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.common.kube.client import NAMESPACES, NODES
from controlplane.controllers import scheduling
from controlplane.controllers.names import FINALIZER_VM
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import (
    Watch,
    fields_changed,
    own_key,
    owners_of_kind,
    spec_changed,
)
from controlplane.controllers.scheduler.assumed import AssumedPlacements
from controlplane.controllers.vm import nodeload, placement
from controlplane.controllers.vm.instance import InstanceHandler
from controlplane.controllers.vm.mac import MACAddressHandler
from controlplane.controllers.vm.migration_status import MigrationStatusHandler
from controlplane.controllers.vm.nodehealth import NodeHealthHandler
from controlplane.controllers.vm.prerequisites import (
    BlockDevicesHandler,
    ClassHandler,
    IPAddressHandler,
    ProvisioningHandler,
)
from controlplane.controllers.vm.status import StatusHandler
from controlplane.controllers.vm.usb import USBDevicesHandler

REPORTED = [C.Type.CLASS_READY, C.Type.IP_ADDRESS_READY, C.Type.MAC_ADDRESS_READY, C.Type.BLOCK_DEVICES_READY, C.Type.PROVISIONING_READY,
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
            state.requeue(state.ctx.runtime.requeue_soon)
        else:
            state.remove_finalizer(FINALIZER_VM)
        state.stop = True


PHASE_EVENTS = PhaseEvents(warning=frozenset({MachinePhase.DEGRADED.value}))
DISK_FIELDS_READ = fields_changed(("status", "phase"), ("status", "capacity"), ("status", "size"))
"""What `prerequisites.BlockDevicesHandler` reads of a VirtualDisk (with its existence and deletion)."""
VMIP_FIELDS_READ = fields_changed(("status", "address"), ("status", "phase"))
"""What `prerequisites.IPAddressHandler` reads of a VirtualMachineIPAddress."""


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, VIRTUAL_MACHINES, [
        InitHandler(), DeletionHandler(), ClassHandler(), IPAddressHandler(), MACAddressHandler(), BlockDevicesHandler(),
        ProvisioningHandler(), USBDevicesHandler(), InstanceHandler(AssumedPlacements()), StatusHandler(), NodeHealthHandler(), MigrationStatusHandler()], failure_condition=C.Type.RUNNING,
        after=[PHASE_EVENTS], drop_echoes=True)

    indexes.register(ctx, indexes.VMS_BY_BLOCK_DEVICE, indexes.VMS_BY_CLASS, indexes.VMS_BY_IP_ADDRESS,
                     indexes.VMS_BY_MAC_ADDRESS, indexes.VMS_BY_USB_DEVICE, indexes.VMS_UNPLACED, indexes.INSTANCES_BY_NODE, indexes.ATTACHMENTS_BY_VM,
                     placement.VMS_BY_NODE, placement.VMS_WITH_REQUIRED_ANTI_AFFINITY)
    ctx.informer(VOLUMES)  # a provisioned disk pins its VM to the volume's node (vm/placement.py)
    nodeload.of(ctx, placement.requested)  # fed from the first event on, before any placement reads it

    def vms_using(kind: str) -> Any:
        def keys(obj: dict[str, Any]) -> list[tuple[str, str]]:
            value = indexes.block_device(kind, obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
            return indexes.keys(ctx, indexes.VMS_BY_BLOCK_DEVICE, value)
        return keys

    def vms_of_class(cls: dict[str, Any]) -> list[tuple[str, str]]:
        return indexes.keys(ctx, indexes.VMS_BY_CLASS, cls["metadata"]["name"])

    def vm_of_vmip(vmip: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vmip["metadata"].get("namespace", "")
        return [*owners_of_kind("VirtualMachine")(vmip),
                *indexes.keys(ctx, indexes.VMS_BY_IP_ADDRESS, f"{ns}/{vmip['metadata']['name']}")]

    def vms_of_vmmac(vmmac: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vmmac["metadata"].get("namespace", "")
        return [*owners_of_kind("VirtualMachine")(vmmac),
                *indexes.keys(ctx, indexes.VMS_BY_MAC_ADDRESS, f"{ns}/{vmmac['metadata']['name']}")]

    def pending_vms(node: dict[str, Any]) -> list[tuple[str, str]]:
        """Unplaced VMs (the node may take them now) and the node's own VMs (it may be lost or back)."""
        return [*indexes.keys(ctx, indexes.VMS_UNPLACED, "true"),
                *indexes.keys(ctx, placement.VMS_BY_NODE, node["metadata"]["name"])]

    def freed_room(vm: dict[str, Any]) -> list[tuple[str, str]]:
        """A placed VM going away frees room on its node: the unplaced VMs try again at once."""
        if vm["metadata"].get("deletionTimestamp") and (vm.get("status") or {}).get("nodeName"):
            return indexes.keys(ctx, indexes.VMS_UNPLACED, "true")
        return []

    watches = [
        Watch(VIRTUAL_MACHINES, lambda o: [own_key(o)]),
        Watch(VIRTUAL_MACHINES, freed_room),
        Watch(INSTANCES, owners_of_kind("VirtualMachine")),
        # a VM reads of its disks their existence, phase and size (blockdevices), not their usage or progress
        Watch(VIRTUAL_DISKS, vms_using("VirtualDisk"), relevant=DISK_FIELDS_READ),
        Watch(VIRTUAL_IMAGES, vms_using("VirtualImage")),
        Watch(CLUSTER_VIRTUAL_IMAGES, vms_using("ClusterVirtualImage")),
        Watch(VIRTUAL_MACHINE_CLASSES, vms_of_class, relevant=spec_changed),  # its status is not read
        Watch(VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS,
              lambda b: [(b["metadata"].get("namespace", ""), (b.get("spec") or {}).get("virtualMachineName", ""))]),
        Watch(VIRTUAL_MACHINE_IP_ADDRESSES, vm_of_vmip, relevant=VMIP_FIELDS_READ),
        Watch(VIRTUAL_MACHINE_MAC_ADDRESSES, vms_of_vmmac),
        Watch(USB_DEVICES, lambda u: indexes.keys(ctx, indexes.VMS_BY_USB_DEVICE,
                                                  f"{u['metadata'].get('namespace', '')}/{u['metadata']['name']}"),
              relevant=fields_changed(("status", "nodeName"), ("status", "attributes"), ("status", "conditions"))),
        Watch(NODES, pending_vms, relevant=scheduling.placement_changed),
        # a Namespace's labels decide which VMs a namespaceSelector of VM affinity sees
        Watch(NAMESPACES, lambda _ns: indexes.keys(ctx, indexes.VMS_UNPLACED, "true"),
              relevant=fields_changed(("metadata", "labels"))),
    ]
    return reconciler, watches
