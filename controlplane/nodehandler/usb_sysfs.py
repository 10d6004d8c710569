"""The USB devices of this host, read from sysfs: pure, given the sysfs root, so tests build a
fake tree under a temporary directory.

`/sys/bus/usb/devices/` holds one entry per device (`1-1`, `1-1.2`: bus, then the port path)
and per interface (`1-1:1.0`: a colon, then configuration.interface), plus each bus's root
hub (`usb1`). Only devices are kept; root hubs and other hubs (`bDeviceClass` 09) are not
devices a VM uses, so they are left out. An entry without `idVendor`/`idProduct`/`busnum`/
`devnum` (a device going away while it is read) is skipped; text attributes a device does not
have (`serial`) are empty.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.api.usb import UsbAttributes

DEVICES_DIR = "sys/bus/usb/devices"
HUB_CLASS = "09"


def _read(entry: Path, attr: str) -> str:
    try:
        return (entry / attr).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _speed(text: str) -> int:
    """Mbit/s as an integer (sysfs says `1.5` for low speed: that is 1)."""
    try:
        return int(float(text))
    except ValueError:
        return 0


def _dev_numbers(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(":")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else (0, 0)


def read_device(entry: Path, *, node: str) -> UsbAttributes | None:
    """One sysfs device entry, or None when it is an interface, a hub, or not readable."""
    name = entry.name
    if ":" in name or name.startswith("usb"):
        return None
    if _read(entry, "bDeviceClass").lower() == HUB_CLASS:
        return None
    vendor, product = _read(entry, "idVendor").lower(), _read(entry, "idProduct").lower()
    bus, devnum = _read(entry, "busnum"), _read(entry, "devnum")
    if not (vendor and product and bus.isdigit() and devnum.isdigit()):
        return None
    major, minor = _dev_numbers(_read(entry, "dev"))
    return UsbAttributes(name=name, vendor_id=vendor, product_id=product, bus=int(bus), device_number=int(devnum),
                         node_name=node, manufacturer=_read(entry, "manufacturer"), product=_read(entry, "product"),
                         serial=_read(entry, "serial"), bcd=_read(entry, "bcdDevice").lower(),
                         speed=_speed(_read(entry, "speed")), major=major, minor=minor)


def scan(root: Path, *, node: str) -> list[UsbAttributes]:
    """Every USB device under `root` (the host's `/`), sorted by port path."""
    folder = root / DEVICES_DIR
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError:  # no USB bus at all (many VMs and containers)
        return []
    found = (read_device(entry, node=node) for entry in entries)
    return [d for d in found if d is not None]
