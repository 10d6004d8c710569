"""USB devices in the API: NodeUSBDevice (cluster-wide, one per device a node handler finds) and
USBDevice (a device made available in a namespace), as one typed contract.

The node handler reads a device from sysfs into `UsbAttributes` and publishes it as the
NodeUSBDevice `node_device_name(node, attrs)` (`status.attributes` is `UsbAttributes.to_api()`);
the USB controller copies the attributes into the USBDevice of the assigned namespace; the VM
controller reads them back (`UsbAttributes.from_api`) to tell the node handler which host
device to pass through (`instance.UsbHostDevice`). Condition types and reasons are DVP's
(`nodeusbdevicecondition`, `usbdevicecondition`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class NodeUSBDeviceCondition:
    """NodeUSBDevice (nodeusbdevicecondition)."""

    class Type(StrEnum):
        ASSIGNED = "Assigned"
        READY = "Ready"

    class AssignedReason(StrEnum):
        ASSIGNED = "Assigned"
        AVAILABLE = "Available"
        IN_PROGRESS = "InProgress"

    class ReadyReason(StrEnum):
        READY = "Ready"
        NOT_READY = "NotReady"
        NOT_FOUND = "NotFound"


class USBDeviceCondition:
    """USBDevice (usbdevicecondition)."""

    class Type(StrEnum):
        READY = "Ready"
        ATTACHED = "Attached"

    class ReadyReason(StrEnum):
        READY = "Ready"
        NOT_READY = "NotReady"
        NOT_FOUND = "NotFound"

    class AttachedReason(StrEnum):
        ATTACHED_TO_VIRTUAL_MACHINE = "AttachedToVirtualMachine"
        AVAILABLE = "Available"
        DETACHED_FOR_MIGRATION = "DetachedForMigration"


SOURCE_LABEL = "virtualization.deckhouse.io/node-usb-device"
"""On a USBDevice: the NodeUSBDevice it stands for (the controller finds its copies by it)."""

_NAME_CHARS = re.compile(r"[^a-z0-9.-]+")


@dataclass(frozen=True)
class UsbAttributes:
    """One USB device as its node sees it; field names follow `status.attributes`."""

    name: str
    """The sysfs port path (`1-1.2`): stable while the device stays in its port."""
    vendor_id: str
    product_id: str
    bus: int
    device_number: int
    node_name: str = ""
    manufacturer: str = ""
    product: str = ""
    serial: str = ""
    bcd: str = ""
    speed: int = 0
    major: int = 0
    minor: int = 0

    @property
    def device_path(self) -> str:
        return f"/dev/bus/usb/{self.bus:03d}/{self.device_number:03d}"

    def to_api(self, *, with_speed: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "vendorID": self.vendor_id, "productID": self.product_id, "bus": str(self.bus),
            "deviceNumber": str(self.device_number), "devicePath": self.device_path, "nodeName": self.node_name,
            "manufacturer": self.manufacturer, "product": self.product, "serial": self.serial, "bcd": self.bcd,
            "major": self.major, "minor": self.minor}
        if with_speed:
            out["speed"] = self.speed
        return out

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> UsbAttributes | None:
        """The attributes of a status, or None when they do not name a device (vendor, product, address)."""
        try:
            return cls(name=str(raw.get("name") or ""), vendor_id=str(raw["vendorID"]).lower(),
                       product_id=str(raw["productID"]).lower(), bus=int(raw["bus"]),
                       device_number=int(raw["deviceNumber"]), node_name=str(raw.get("nodeName") or ""),
                       manufacturer=str(raw.get("manufacturer") or ""), product=str(raw.get("product") or ""),
                       serial=str(raw.get("serial") or ""), bcd=str(raw.get("bcd") or ""),
                       speed=int(raw.get("speed") or 0), major=int(raw.get("major") or 0),
                       minor=int(raw.get("minor") or 0))
        except (KeyError, TypeError, ValueError):
            return None


def node_device_name(node: str, attrs: UsbAttributes) -> str:
    """The NodeUSBDevice name of a device: `<node>-usb-<port path>-<vendor>-<product>`.

    The node comes first so that the node authorizer can confine a node to its own devices by
    name (`owned_by`); port and IDs keep the name stable while the device stays where it is,
    and change it when another device takes the port."""
    port = _NAME_CHARS.sub("-", attrs.name.lower()).strip("-.") or "x"
    return f"{node}-usb-{port}-{attrs.vendor_id}-{attrs.product_id}"[:253]


def owned_by(name: str, node: str) -> bool:
    """Whether a NodeUSBDevice of this name is one `node` publishes."""
    return bool(node) and name.startswith(f"{node}-usb-")
