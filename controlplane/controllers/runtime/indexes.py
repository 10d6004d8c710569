"""The informer indexes the controllers look related objects up by, defined once.

Each relation a watcher or handler follows has one index on the shared informer of its kind:
class → VMs, block device (disk, image) → VMs, IP and MAC address objects → VMs, USBDevice → VMs, unplaced VMs,
node → instances, image → disks, source → images, VM → attachments, VM → operations,
uid → operations, queued (Pending) migrations, snapshot → snapshot operations. One event then
maps to the keys it affects in O(affected) — `vms_of_class` used to scan every VM — and a
handler asking "which VMs use this disk" reads one index entry. `lookup` registers an index
on first use; the informer keeps it current with its cache.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controlplane.api.resources import (
    INSTANCES,
    VIRTUAL_DISKS,
    VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS,
    VIRTUAL_MACHINE_OPERATIONS,
    VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS,
    VIRTUAL_MACHINES,
)
from controlplane.common.kube.client import Resource
from controlplane.common.kube.informer import IndexFunc, Key, key_of

if TYPE_CHECKING:
    from controlplane.controllers.runtime.context import Context


@dataclass(frozen=True)
class Index:
    resource: Resource
    name: str
    fn: IndexFunc


def _ns(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj.get("spec") or {}
    return spec


def block_device(kind: str, namespace: str, name: str) -> str:
    """Index value of a block device: a ClusterVirtualImage is cluster-wide (no namespace)."""
    return f"{kind}/{'' if kind == 'ClusterVirtualImage' else namespace}/{name}"


def _vm_block_devices(vm: dict[str, Any]) -> Iterable[str]:
    refs = [*(_spec(vm).get("blockDeviceRefs") or []), *((vm.get("status") or {}).get("blockDeviceRefs") or [])]
    return {block_device(str(r.get("kind")), _ns(vm), str(r.get("name"))) for r in refs if r.get("name")}


def _vm_ip_addresses(vm: dict[str, Any]) -> Iterable[str]:
    names = {_spec(vm).get("virtualMachineIPAddressName"), (vm.get("status") or {}).get("virtualMachineIPAddressName")}
    return {f"{_ns(vm)}/{n}" for n in names if n}


def vm_interfaces(vm: dict[str, Any]) -> list[dict[str, Any]]:
    """The VM's network interfaces: `spec.networks`, or the Main network alone when unset."""
    return list(_spec(vm).get("networks") or [{"type": "Main"}])


def vm_mac_address_name(vm: dict[str, Any], i: int, iface: dict[str, Any]) -> str:
    """The VirtualMachineMACAddress of interface `i`: the one it names, else the VM's own
    automatic one (`<vm>` for the first interface, `<vm>-<i>` for the others)."""
    named = iface.get("virtualMachineMACAddressName")
    if named:
        return str(named)
    name = str((vm.get("metadata") or {}).get("name") or "")
    return name if i == 0 else f"{name}-{i}"


def _vm_mac_addresses(vm: dict[str, Any]) -> Iterable[str]:
    names = {vm_mac_address_name(vm, i, iface) for i, iface in enumerate(vm_interfaces(vm))}
    names |= {n.get("virtualMachineMACAddressName") for n in (vm.get("status") or {}).get("networks") or []}
    return {f"{_ns(vm)}/{n}" for n in names if n}


def _vm_usb_devices(vm: dict[str, Any]) -> Iterable[str]:
    return [f"{_ns(vm)}/{u['name']}" for u in _spec(vm).get("usbDevices") or [] if u.get("name")]


def _disk_image(disk: dict[str, Any]) -> Iterable[str]:
    ref = (_spec(disk).get("dataSource") or {}).get("objectRef") or {}
    return [block_device(str(ref["kind"]), _ns(disk), str(ref["name"]))] if ref.get("kind") and ref.get("name") else []


def _image_source(image: dict[str, Any]) -> Iterable[str]:
    ref = (_spec(image).get("dataSource") or {}).get("objectRef") or {}
    return [f"{ref['kind']}/{ref['name']}"] if ref.get("kind") and ref.get("name") else []


def _of_vm(obj: dict[str, Any]) -> Iterable[str]:
    vm = _spec(obj).get("virtualMachineName")
    return [f"{_ns(obj)}/{vm}"] if vm else []


VMS_BY_CLASS = Index(VIRTUAL_MACHINES, "class",
                     lambda vm: [c] if (c := _spec(vm).get("virtualMachineClassName")) else [])
VMS_BY_BLOCK_DEVICE = Index(VIRTUAL_MACHINES, "blockDevice", _vm_block_devices)
VMS_BY_IP_ADDRESS = Index(VIRTUAL_MACHINES, "ipAddress", _vm_ip_addresses)
VMS_BY_MAC_ADDRESS = Index(VIRTUAL_MACHINES, "macAddress", _vm_mac_addresses)
VMS_BY_USB_DEVICE = Index(VIRTUAL_MACHINES, "usbDevice", _vm_usb_devices)
VMS_UNPLACED = Index(VIRTUAL_MACHINES, "unplaced",
                     lambda vm: [] if (vm.get("status") or {}).get("nodeName") else ["true"])
INSTANCES_BY_NODE = Index(INSTANCES, "node", lambda i: [n] if (n := _spec(i).get("nodeName")) else [])
DISKS_BY_IMAGE = Index(VIRTUAL_DISKS, "image", _disk_image)
ATTACHMENTS_BY_VM = Index(VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS, "vm", _of_vm)
OPERATIONS_BY_VM = Index(VIRTUAL_MACHINE_OPERATIONS, "vm", _of_vm)
OPERATIONS_BY_UID = Index(VIRTUAL_MACHINE_OPERATIONS, "uid",
                          lambda o: [u] if (u := (o.get("metadata") or {}).get("uid")) else [])
SNAPSHOT_OPERATIONS_BY_SNAPSHOT = Index(
    VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS, "snapshot",
    lambda o: [f"{_ns(o)}/{s}"] if (s := _spec(o).get("virtualMachineSnapshotName")) else [])
MIGRATION_TYPES = ("Migrate", "Evict")
OPERATIONS_QUEUED = Index(VIRTUAL_MACHINE_OPERATIONS, "queuedMigration",
                          lambda o: ["true"] if _spec(o).get("type") in MIGRATION_TYPES
                          and (o.get("status") or {}).get("phase") in (None, "Pending") else [])


def images_by_source(resource: Resource) -> Index:
    """VirtualImages or ClusterVirtualImages by the object they are made from (`Kind/name`)."""
    return Index(resource, "source", _image_source)


def images_by_phase(resource: Resource) -> Index:
    """VirtualImages or ClusterVirtualImages by `status.phase` (which may be pushing to DVCR)."""
    return Index(resource, "phase", lambda o: [p] if (p := (o.get("status") or {}).get("phase")) else [])


def lookup(ctx: Context, index: Index, value: str) -> list[dict[str, Any]]:
    informer = ctx.informer(index.resource)
    informer.add_index(index.name, index.fn)
    return informer.by_index(index.name, value)


def count(ctx: Context, index: Index, value: str) -> int:
    """How many objects the index holds under `value`, without listing them."""
    informer = ctx.informer(index.resource)
    informer.add_index(index.name, index.fn)
    return informer.index_count(index.name, value)


def keys(ctx: Context, index: Index, value: str) -> list[Key]:
    return [key_of(o) for o in lookup(ctx, index, value)]


def register(ctx: Context, *indexes: Index) -> None:
    """Create indexes up front (before the informers start), so the first event finds them."""
    for index in indexes:
        ctx.informer(index.resource).add_index(index.name, index.fn)
