"""The USBDevice reconciler: a USBDevice shows what its NodeUSBDevice knows, and who uses it.

One handler, `status`:
- `attributes` and `nodeName` are copied from the NodeUSBDevice of the same name (label
  `virtualization.deckhouse.io/node-usb-device`), and `Ready` with them (`NotFound` when the
  NodeUSBDevice is gone or says the device is unplugged);
- `Attached` is True while a VirtualMachine of the namespace names the device in
  `spec.usbDevices` and reports it attached in `status.usbDevices` (vm/usb.py); else
  `Available`.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import NODE_USB_DEVICES, USB_DEVICES, VIRTUAL_MACHINES
from controlplane.api.usb import SOURCE_LABEL
from controlplane.api.usb import NodeUSBDeviceCondition as NodeC
from controlplane.api.usb import USBDeviceCondition as C
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, fields_changed, own_key
from controlplane.controllers.usb.nodeusb import COPIES


def attached_vm(state: State) -> str | None:
    """The VM of the namespace the device is attached to, if any."""
    for vm in state.lookup(indexes.VMS_BY_USB_DEVICE, f"{state.namespace}/{state.name}"):
        for entry in (vm.get("status") or {}).get("usbDevices") or []:
            if entry.get("name") == state.name and entry.get("attached"):
                return str(vm["metadata"]["name"])
    return None


class StatusHandler:
    name = "status"
    condition = C.Type.READY

    def handle(self, state: State) -> None:
        source_name = (state.meta.get("labels") or {}).get(SOURCE_LABEL) or state.name
        source = state.get(NODE_USB_DEVICES, source_name, "")
        src_status = (source or {}).get("status") or {}
        if src_status.get("attributes"):
            attributes = dict(src_status["attributes"])
            attributes.pop("speed", None)  # not in USBDevice's schema
            state.status["attributes"] = attributes
        if src_status.get("nodeName"):
            state.status["nodeName"] = src_status["nodeName"]
        ready = conditions.get(src_status, NodeC.Type.READY)
        if source is None:
            conditions.set_condition(state.status, C.Type.READY, False, C.ReadyReason.NOT_FOUND,
                                     f"NodeUSBDevice {source_name} does not exist: the device is gone from its node",
                                     generation=state.generation)
        elif ready is None or ready.get("status") != "True":
            reason = C.ReadyReason.NOT_FOUND if (ready or {}).get("reason") == NodeC.ReadyReason.NOT_FOUND \
                else C.ReadyReason.NOT_READY
            conditions.set_condition(state.status, C.Type.READY, False, reason,
                                     (ready or {}).get("message") or f"NodeUSBDevice {source_name} is not ready yet",
                                     generation=state.generation)
        else:
            conditions.set_condition(state.status, C.Type.READY, True, C.ReadyReason.READY,
                                     f"plugged into node {src_status.get('nodeName', '')}", generation=state.generation)
        vm = attached_vm(state)
        if vm:
            conditions.set_condition(state.status, C.Type.ATTACHED, True, C.AttachedReason.ATTACHED_TO_VIRTUAL_MACHINE,
                                     f"attached to VirtualMachine {vm}", generation=state.generation)
        else:
            conditions.set_condition(state.status, C.Type.ATTACHED, False, C.AttachedReason.AVAILABLE,
                                     "available: name it in a VirtualMachine's spec.usbDevices",
                                     generation=state.generation)
        state.status["observedGeneration"] = state.generation


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, USB_DEVICES, [StatusHandler()], failure_condition=C.Type.READY)
    indexes.register(ctx, COPIES, indexes.VMS_BY_USB_DEVICE)

    def copies_of(source: dict[str, Any]) -> list[tuple[str, str]]:
        return indexes.keys(ctx, COPIES, source["metadata"]["name"])

    def devices_of_vm(vm: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vm["metadata"].get("namespace", "")
        return [(ns, key.split("/", 1)[1]) for key in indexes.VMS_BY_USB_DEVICE.fn(vm)]

    return reconciler, [Watch(USB_DEVICES, lambda o: [own_key(o)]), Watch(NODE_USB_DEVICES, copies_of),
                        Watch(VIRTUAL_MACHINES, devices_of_vm,
                              relevant=fields_changed(("spec", "usbDevices"), ("status", "usbDevices")))]
