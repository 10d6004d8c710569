"""The InternalVirtualMachineInstance spec: one typed contract for its writer and its reader.

The VM controller builds the spec it writes from these types (`build_spec`, `DiskSpec.to_api`,
`NicSpec.to_api`, `UsbHostDevice.to_api`, `PowerRequest.to_api`); the node handler parses what it reads back into the
same types (`parse_instance`), so both sides spell fields and enum values the same way and a
round trip gives back what was built (tests/unit/test_internal_contract.py).

Parsing adds what the schema cannot say (a disk names exactly one source, quantities parse,
names are unique, a NIC's IP is in the node's VM network) and fills defaults, so the domain
builder never sees a half-valid instance. Errors are `SpecError`s naming the field
(`spec.disks[1].volume`), shown in the instance's `ConfigurationValid` condition.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

from kubernetes.utils.quantity import parse_quantity

from controlplane.api.internal import PowerAction, RunState

P = ParamSpec("P")
T = TypeVar("T")


class Firmware(StrEnum):
    BIOS = "BIOS"
    EFI = "EFI"


class MachineType(StrEnum):
    PC = "pc"
    Q35 = "q35"


class DiskBus(StrEnum):
    VIRTIO = "virtio"
    SATA = "sata"
    SCSI = "scsi"


class NicModel(StrEnum):
    VIRTIO = "virtio"
    E1000 = "e1000"


class SpecError(ValueError):
    """A field of the instance is unusable; the message starts with its path."""


def quantity_bytes(value: Any, field: str) -> int:
    try:
        amount = parse_quantity(value)  # type: ignore[no-untyped-call]
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise SpecError(f"{field}: {value!r} is not a quantity (e.g. 512Mi, 1Gi)") from exc
    if amount <= 0 or amount != amount.to_integral_value():
        raise SpecError(f"{field}: {value!r} must be a positive whole number of bytes")
    return int(Decimal(amount))


@dataclass(frozen=True)
class DiskSpec:
    name: str
    bus: str
    read_only: bool
    cdrom: bool
    boot_order: int
    volume: str | None
    image_ref: str | None
    image_digest: str | None = None
    hotplugged: bool = False
    """Attached by a VirtualMachineBlockDeviceAttachment: applied at once, outside the boot order."""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "bus": str(self.bus)}
        if self.volume:
            out["volume"] = {"name": self.volume}
        else:
            out["image"] = {"ref": self.image_ref or ""}
            if self.image_digest:
                out["image"]["digest"] = self.image_digest
        if self.read_only:
            out["readOnly"] = True
        if self.cdrom:
            out["cdrom"] = True
        if self.hotplugged:
            out["hotplugged"] = True
        else:
            out["bootOrder"] = self.boot_order
        return out


@dataclass(frozen=True)
class NicSpec:
    name: str
    mac: str
    ip: str | None
    network: str
    model: str

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "mac": self.mac, "ip": self.ip or "", "network": self.network,
                "model": str(self.model)}


@dataclass(frozen=True)
class UsbHostDevice:
    """A host USB device passed through to the guest (a USBDevice of the VM's namespace)."""

    name: str
    vendor_id: str
    product_id: str
    bus: int
    device: int

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "vendorID": self.vendor_id, "productID": self.product_id,
                "bus": self.bus, "device": self.device}


@dataclass(frozen=True)
class PowerRequest:
    id: str
    action: PowerAction
    force: bool
    grace_period: int | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "action": str(self.action), "force": self.force}
        if self.grace_period is not None:
            out["gracePeriodSeconds"] = self.grace_period
        return out


@dataclass(frozen=True)
class InstanceSpec:
    node_name: str
    run_state: RunState
    hostname: str
    firmware: str
    machine_type: str
    paravirtualization: bool
    cores: int
    sockets: int
    threads: int
    cpu_model: str
    core_fraction: int
    memory_bytes: int
    disks: tuple[DiskSpec, ...]
    nics: tuple[NicSpec, ...]
    user_data: str | None
    user_data_secret: str | None
    network_config: str | None
    vnc: bool
    grace_period: int
    power_request: PowerRequest | None
    usb_devices: tuple[UsbHostDevice, ...] = ()

    @property
    def vcpus(self) -> int:
        return self.cores * self.sockets * self.threads

    @property
    def has_cloud_init(self) -> bool:
        return self.user_data is not None or self.user_data_secret is not None or self.network_config is not None


def _disk(i: int, raw: dict[str, Any], paravirt: bool) -> DiskSpec:
    path = f"spec.disks[{i}]"
    volume = (raw.get("volume") or {}).get("name")
    image = raw.get("image") or {}
    if bool(volume) == bool(image.get("ref")):
        raise SpecError(f"{path}: give exactly one of volume.name and image.ref (disk {raw.get('name')!r})")
    cdrom = bool(raw.get("cdrom"))
    bus = raw.get("bus") or (("scsi" if cdrom else "virtio") if paravirt else "sata")
    if cdrom and bus == "virtio":
        raise SpecError(f"{path}.bus: a cdrom cannot be on the virtio bus: use scsi or sata")
    return DiskSpec(name=raw["name"], bus=bus, read_only=bool(raw.get("readOnly")) or cdrom or bool(image.get("ref")),
                    cdrom=cdrom, boot_order=int(raw.get("bootOrder") or i + 1), volume=volume,
                    image_ref=image.get("ref"), image_digest=image.get("digest"),
                    hotplugged=bool(raw.get("hotplugged")))


def _nic(i: int, raw: dict[str, Any], paravirt: bool, vm_net: ipaddress.IPv4Network | None) -> NicSpec:
    ip = raw.get("ip") or None
    if ip is not None:
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError as exc:
            raise SpecError(f"spec.nics[{i}].ip: {ip!r} is not an IPv4 address") from exc
        if vm_net is not None and (addr not in vm_net or addr in (vm_net.network_address, vm_net.broadcast_address,
                                                                   vm_net.network_address + 1)):
            raise SpecError(f"spec.nics[{i}].ip: {ip} is not a guest address of this node's VM network {vm_net} "
                            f"({vm_net.network_address + 1} is the node's own)")
    return NicSpec(name=raw["name"], mac=raw["mac"].lower(), ip=ip, network=raw.get("network") or "default",
                   model=raw.get("model") or ("virtio" if paravirt else "e1000"))


_HEX4 = re.compile(r"^[0-9a-f]{4}$")


def _usb(i: int, raw: dict[str, Any]) -> UsbHostDevice:
    path = f"spec.usbDevices[{i}]"
    ids = {k: str(raw.get(k) or "").lower().removeprefix("0x") for k in ("vendorID", "productID")}
    for key, value in ids.items():
        if not _HEX4.match(value):
            raise SpecError(f"{path}.{key}: {raw.get(key)!r} is not a USB ID of 4 hex digits (e.g. 046d)")
    try:
        bus, device = int(raw["bus"]), int(raw["device"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path}: bus and device must be numbers (the device's address on the node)") from exc
    return UsbHostDevice(name=str(raw.get("name") or ""), vendor_id=ids["vendorID"], product_id=ids["productID"],
                         bus=bus, device=device)


def shape_errors_are_spec_errors(parse: Callable[P, T]) -> Callable[P, T]:
    """A parser of an internal object raises SpecError, also for a value of a wrong shape that the
    schema would have refused (an object stored under an earlier schema, a hand-made dict): the
    node handler reports it in the object's status instead of failing its reconcile."""
    @functools.wraps(parse)
    def parsed(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return parse(*args, **kwargs)
        except SpecError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise SpecError(f"spec: a value of the wrong shape ({type(exc).__name__}: {exc})") from exc
    return parsed


@shape_errors_are_spec_errors
def parse_instance(obj: dict[str, Any], *, vm_net: ipaddress.IPv4Network | None = None) -> InstanceSpec:
    """Typed spec of `obj` (an instance dict as the API returns it); raises SpecError."""
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    paravirt = spec.get("paravirtualization", True) is not False
    cpu = spec.get("cpu") or {}
    fraction = str(cpu.get("coreFraction") or "100%").rstrip("%")
    if not fraction.isdigit() or not 1 <= int(fraction) <= 100:
        raise SpecError(f"spec.cpu.coreFraction: {cpu.get('coreFraction')!r} is not a percentage from 1% to 100%")
    memory = quantity_bytes((spec.get("memory") or {}).get("size"), "spec.memory.size")
    if memory < 16 * 2**20:
        raise SpecError(f"spec.memory.size: {memory} bytes is less than the 16Mi a guest needs")
    disks = tuple(_disk(i, d, paravirt) for i, d in enumerate(spec.get("disks") or []))
    nics = tuple(_nic(i, n, paravirt, vm_net) for i, n in enumerate(spec.get("nics") or []))
    usbs = tuple(_usb(i, u) for i, u in enumerate(spec.get("usbDevices") or []))
    for what, names in (("disks", [d.name for d in disks]), ("nics", [n.name for n in nics]),
                        ("nics", [n.mac for n in nics]), ("usbDevices", [u.name for u in usbs])):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"spec.{what}: {', '.join(dupes)} appear(s) more than once")
    orders = [d.boot_order for d in disks]
    if len(set(orders)) != len(orders):
        raise SpecError("spec.disks[].bootOrder: two disks have the same boot order")
    ci = spec.get("cloudInit") or {}
    pr = spec.get("powerRequest")
    power = None
    if pr:
        try:
            action = PowerAction(pr.get("action"))
        except ValueError as exc:
            raise SpecError(f"spec.powerRequest.action: {pr.get('action')!r} is not Restart, Stop or Start") from exc
        grace = pr.get("gracePeriodSeconds")
        power = PowerRequest(id=str(pr["id"]), action=action, force=bool(pr.get("force")),
                             grace_period=int(grace) if grace is not None else None)
    hostname = spec.get("hostname") or meta.get("name", "")
    return InstanceSpec(
        node_name=spec.get("nodeName", ""), run_state=RunState(spec.get("runState") or "Running"),
        hostname=hostname[:63].rstrip("-.") or "vm", firmware=spec.get("firmware") or "BIOS",
        machine_type=spec.get("machineType") or "pc", paravirtualization=paravirt,
        cores=int(cpu.get("cores") or 1), sockets=int(cpu.get("sockets") or 1), threads=int(cpu.get("threads") or 1),
        cpu_model=cpu.get("model") or "host-model", core_fraction=int(fraction), memory_bytes=memory,
        disks=tuple(sorted(disks, key=lambda d: d.boot_order)), nics=nics,
        user_data=ci.get("userData"), user_data_secret=(ci.get("userDataSecretRef") or {}).get("name"),
        network_config=ci.get("networkConfig"), vnc=spec.get("vnc", True) is not False,
        grace_period=int(spec.get("shutdownGracePeriodSeconds", 60)), power_request=power, usb_devices=usbs,
    )


def build_spec(*, node_name: str, hostname: str, firmware: Firmware, machine_type: MachineType,
               paravirtualization: bool, cores: int, cpu_model: str, core_fraction: str, memory_size: str | None,
               disks: Sequence[DiskSpec], nics: Sequence[NicSpec], grace_period: int,
               user_data: str | None = None, user_data_secret: str | None = None,
               usb_devices: Sequence[UsbHostDevice] = ()) -> dict[str, Any]:
    """The spec the VM controller writes (no `runState`/`powerRequest`: those follow the run
    policy and operations). Only fields the controller decides are set; the API server fills
    the schema's defaults (cpu.sockets, vnc, ...) and `parse_instance` reads both alike."""
    spec: dict[str, Any] = {
        "nodeName": node_name,
        "hostname": hostname,
        "firmware": str(firmware),
        "machineType": str(machine_type),
        "paravirtualization": paravirtualization,
        "cpu": {"cores": cores, "model": cpu_model, "coreFraction": core_fraction},
        "memory": {"size": memory_size},
        "disks": [d.to_api() for d in disks],
        "nics": [n.to_api() for n in nics],
        "shutdownGracePeriodSeconds": grace_period,
    }
    if usb_devices:  # absent when none, so instances written before USB support read the same
        spec["usbDevices"] = [u.to_api() for u in usb_devices]
    if user_data is not None:
        spec["cloudInit"] = {"userData": user_data}
    elif user_data_secret is not None:
        spec["cloudInit"] = {"userDataSecretRef": {"name": user_data_secret}}
    return spec
