"""The VM's USB devices: each `spec.usbDevices[].name` is a USBDevice of the VM's namespace.

A device is passed through (`usable`, then the instance's `usbDevices`, then a `<hostdev>` in
the domain) when its USBDevice exists, is Ready, names a vendor, product and address, and sits
on the VM's node. A device that is not usable never holds the VM back: the VM starts without it
and the condition `USBDevicesReady` (ours; DVP reports USB devices only in `status.usbDevices`)
names each missing device and what to do. An unplaced VM is placed on the node of its first
usable device unless a provisioned disk pins it elsewhere (`device_node`, vm/placement.py).
`status.usbDevices[]` shows every named device with
`ready` and `attached` (in the instance the node handler runs). The condition is absent for a VM
that names no USB device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.instance import UsbHostDevice
from controlplane.api.resources import INSTANCES, USB_DEVICES
from controlplane.api.usb import UsbAttributes
from controlplane.api.usb import USBDeviceCondition as UsbC
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.controllers.runtime.state import State

R = C.USBDevicesReadyReason


@dataclass(frozen=True)
class Verdict:
    name: str
    device: UsbHostDevice | None
    """Set when the device can be passed through."""
    reason: R = R.USB_DEVICES_READY
    message: str = ""
    node: str = ""
    """Where the device is plugged in (when known)."""


def judge(name: str, usb: dict[str, Any] | None, node: str | None) -> Verdict:
    """Whether USBDevice `name` (`usb`, None when absent) can be given to a VM on `node`
    (None: not placed yet, any node will do for now)."""
    if usb is None:
        return Verdict(name, None, R.USB_DEVICE_NOT_FOUND,
                       f"USBDevice {name!r} does not exist in this namespace: assign its NodeUSBDevice to this "
                       f"namespace (spec.assignedNamespace), or remove it from spec.usbDevices")
    status = usb.get("status") or {}
    attrs = UsbAttributes.from_api(status.get("attributes") or {})
    if attrs is None or not conditions.is_true(status, UsbC.Type.READY):
        why = (conditions.get(status, UsbC.Type.READY) or {}).get("message") or "not ready yet"
        return Verdict(name, None, R.USB_DEVICE_NOT_READY, f"USBDevice {name!r} is not ready: {why}")
    where = str(status.get("nodeName") or attrs.node_name)
    if node and where != node:
        return Verdict(name, None, R.USB_DEVICE_ON_OTHER_NODE,
                       f"USBDevice {name!r} is plugged into node {where}, the VM runs on {node}: plug it into "
                       f"{node}, or move the VM there")
    return Verdict(name, UsbHostDevice(name=name, vendor_id=attrs.vendor_id, product_id=attrs.product_id,
                                       bus=attrs.bus, device=attrs.device_number), node=where)


def verdicts(state: State, node: str | None) -> list[Verdict]:
    names = [str(u.get("name")) for u in state.spec.get("usbDevices") or [] if u.get("name")]
    return [judge(n, state.get(USB_DEVICES, n), node) for n in names]


def device_node(state: State) -> tuple[str | None, str]:
    """The node of the first usable USB device of a VM not placed yet, and which device it is:
    placement puts the VM there (a disk provisioned elsewhere pins it first)."""
    for v in verdicts(state, None):
        if v.device is not None and v.node:
            return v.node, f"USBDevice {v.name!r}"
    return None, ""


def usable(state: State, node: str) -> list[UsbHostDevice]:
    """The host devices the instance on `node` gets."""
    return [v.device for v in verdicts(state, node) if v.device is not None]


class USBDevicesHandler:
    name = "usb"
    condition = C.Type.USB_DEVICES_READY

    def handle(self, state: State) -> None:
        if not state.spec.get("usbDevices"):
            conditions.remove(state.status, C.Type.USB_DEVICES_READY)
            state.status.pop("usbDevices", None)
            return
        inst = state.get(INSTANCES, state.name)
        node = ((inst or {}).get("spec") or {}).get("nodeName") or state.status.get("nodeName") or None
        in_instance = {u.get("name") for u in ((inst or {}).get("spec") or {}).get("usbDevices") or []}
        found = verdicts(state, node)
        state.status["usbDevices"] = [{"name": v.name, "ready": v.device is not None,
                                       "attached": v.device is not None and v.name in in_instance} for v in found]
        problems = [v for v in found if v.device is None]
        if not problems:
            conditions.set_condition(state.status, C.Type.USB_DEVICES_READY, True, R.USB_DEVICES_READY,
                                     "", generation=state.generation)
            return
        conditions.set_condition(state.status, C.Type.USB_DEVICES_READY, False, problems[0].reason,
                                 "; ".join(v.message for v in problems) + " (the VM runs without it)",
                                 generation=state.generation)
