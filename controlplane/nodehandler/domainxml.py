"""libvirt domain XML built from an instance: the one place that decides what a VM looks like.

Pure: `build_domain_xml(DomainInputs)` -> XML text, unit-tested without libvirt. The domain is
identified by the instance's uid twice: as the libvirt domain UUID and in our metadata element
(namespace `METADATA_NS`), which a restarted handler reads to adopt its domains.

What it emits, from the spec:
- `<domain type="kvm|qemu">` from the hypervisor decision; for emulation the CPU is
  `mode="maximum"` (host-model/passthrough need KVM), a named model stays as asked;
- machine type (pc / q35), firmware: SeaBIOS, or OVMF for EFI (`<os firmware="efi">`, libvirt
  picks the OVMF build and keeps the NVRAM);
- vCPUs with sockets/cores/threads topology, memory, a CPU quota for coreFraction < 100%;
- disks in boot order: volumes (qcow2) and cached images (read-only), on virtio / SATA / SCSI
  (virtio-scsi controller), cdroms on SCSI or SATA;
- NICs on the node's bridge, virtio or e1000 (paravirtualization off);
- host USB devices (`<hostdev mode="subsystem" type="usb">`) by vendor and product and, since
  two identical devices differ only there, by their bus/device address on the node;
- the NoCloud seed as a read-only cdrom (virtio-scsi, or SATA when paravirtualization is off);
- a serial console (pty, also logged to `serial.log`), VNC on a unix socket, and the
  qemu-guest-agent channel (`org.qemu.guest_agent.0`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from controlplane.api.instance import DiskSpec, InstanceSpec, UsbHostDevice
from controlplane.api.internal import DomainType

METADATA_NS = "https://virtualization.deckhouse.io/node-handler/v1"
METADATA_KEY = "dvp"
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"


@dataclass(frozen=True)
class ResolvedDisk:
    spec: DiskSpec
    path: Path
    format: str  # qcow2 | raw


@dataclass(frozen=True)
class DomainInputs:
    name: str
    uid: str
    namespace: str
    instance: str
    node: str
    generation: int
    domain_type: DomainType
    spec: InstanceSpec
    disks: tuple[ResolvedDisk, ...]
    bridges: dict[str, str]
    """NIC network name -> host bridge."""
    seed: Path | None
    serial_log: Path
    vnc_socket: Path
    cpu_quota: bool = True
    """Whether libvirt here can limit CPU time (cgroup cpu); without it coreFraction is not enforced."""


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


class _Targets:
    """Device names per bus family: vda, vdb, ... for virtio; sda, sdb, ... shared by SATA and SCSI."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {"vd": 0, "sd": 0}

    def next(self, bus: str) -> str:
        prefix = "vd" if bus == "virtio" else "sd"
        n = self.used[prefix]
        self.used[prefix] += 1
        letters = ""
        n += 1
        while n:
            n, r = divmod(n - 1, 26)
            letters = chr(ord("a") + r) + letters
        return prefix + letters


def _metadata(dom: ET.Element, inp: DomainInputs) -> None:
    md = _sub(dom, "metadata")
    ET.register_namespace(METADATA_KEY, METADATA_NS)
    inst = ET.SubElement(md, f"{{{METADATA_NS}}}instance")
    for key, value in (("uid", inp.uid), ("namespace", inp.namespace), ("name", inp.instance), ("node", inp.node),
                       ("generation", str(inp.generation))):
        ET.SubElement(inst, f"{{{METADATA_NS}}}{key}").text = value


def _cpu(dom: ET.Element, inp: DomainInputs) -> None:
    spec = inp.spec
    _sub(dom, "vcpu", str(spec.vcpus), placement="static")
    model = spec.cpu_model
    if model in ("host-model", "host-passthrough"):
        cpu = _sub(dom, "cpu", mode=model if inp.domain_type is DomainType.KVM else "maximum")
        if inp.domain_type is DomainType.KVM:
            cpu.set("check", "none")
    else:
        cpu = _sub(dom, "cpu", mode="custom", match="exact", check="none")
        _sub(cpu, "model", model, fallback="allow")
    _sub(cpu, "topology", sockets=str(spec.sockets), dies="1", cores=str(spec.cores), threads=str(spec.threads))
    if spec.core_fraction < 100 and inp.cpu_quota:
        tune = _sub(dom, "cputune")
        _sub(tune, "period", "100000")
        _sub(tune, "quota", str(spec.core_fraction * 1000))


def _os(dom: ET.Element, inp: DomainInputs) -> None:
    os_ = _sub(dom, "os")
    if inp.spec.firmware == "EFI":
        os_.set("firmware", "efi")
        fw = _sub(os_, "firmware")
        _sub(fw, "feature", enabled="no", name="secure-boot")
    _sub(os_, "type", "hvm", arch="x86_64", machine=inp.spec.machine_type)
    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(dom, "clock", offset="utc")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        _sub(dom, event, action)


def _disk(devices: ET.Element, targets: _Targets, *, path: Path, fmt: str, device: str, bus: str, read_only: bool,
          boot_order: int | None, serial: str) -> str:
    d = _sub(devices, "disk", type="file", device=device)
    driver = _sub(d, "driver", name="qemu", type=fmt)
    if device == "disk" and not read_only:
        driver.set("discard", "unmap")
    _sub(d, "source", file=str(path))
    target = targets.next(bus)
    _sub(d, "target", dev=target, bus=bus)
    if read_only:
        _sub(d, "readonly")
    if boot_order is not None:
        _sub(d, "boot", order=str(boot_order))
    if device == "disk":
        _sub(d, "serial", serial[:20])
    return target


def _usb_hostdev(devices: ET.Element, usb: UsbHostDevice) -> None:
    hostdev = _sub(devices, "hostdev", mode="subsystem", type="usb", managed="yes")
    source = _sub(hostdev, "source")
    _sub(source, "vendor", id=f"0x{usb.vendor_id}")
    _sub(source, "product", id=f"0x{usb.product_id}")
    _sub(source, "address", bus=str(usb.bus), device=str(usb.device))
    _sub(hostdev, "alias", name=f"ua-usb-{usb.name}")


def build_domain_xml(inp: DomainInputs) -> str:
    spec = inp.spec
    dom = ET.Element("domain", type=str(inp.domain_type))
    _sub(dom, "name", inp.name)
    _sub(dom, "uuid", inp.uid)
    _sub(dom, "title", f"{inp.namespace}/{inp.instance}")
    _metadata(dom, inp)
    kib = str(spec.memory_bytes // 1024)
    _sub(dom, "memory", kib, unit="KiB")
    _sub(dom, "currentMemory", kib, unit="KiB")
    _cpu(dom, inp)
    _os(dom, inp)
    devices = _sub(dom, "devices")
    targets = _Targets()
    scsi = any(d.spec.bus == "scsi" for d in inp.disks) or (inp.seed is not None and spec.paravirtualization)
    if scsi:
        _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    for order, disk in enumerate(inp.disks, start=1):
        _disk(devices, targets, path=disk.path, fmt=disk.format, device="cdrom" if disk.spec.cdrom else "disk",
              bus=disk.spec.bus, read_only=disk.spec.read_only, boot_order=order, serial=disk.spec.name)
    if inp.seed is not None:
        _disk(devices, targets, path=inp.seed, fmt="raw", device="cdrom",
              bus="scsi" if spec.paravirtualization else "sata", read_only=True, boot_order=None, serial="cidata")
    for nic in spec.nics:
        iface = _sub(devices, "interface", type="bridge")
        _sub(iface, "mac", address=nic.mac)
        _sub(iface, "source", bridge=inp.bridges[nic.network])
        _sub(iface, "model", type=nic.model)
        _sub(iface, "alias", name=f"ua-nic-{nic.name}")
    for usb in spec.usb_devices:
        _usb_hostdev(devices, usb)
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=str(inp.serial_log), append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    channel = _sub(devices, "channel", type="unix")
    _sub(channel, "source", mode="bind")
    _sub(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)
    if spec.vnc:
        graphics = _sub(devices, "graphics", type="vnc", socket=str(inp.vnc_socket))
        _sub(graphics, "listen", type="socket", socket=str(inp.vnc_socket))
        video = _sub(devices, "video")
        _sub(video, "model", type="vga", vram="16384", heads="1", primary="yes")
    else:
        video = _sub(devices, "video")
        _sub(video, "model", type="none")
    _sub(devices, "input", type="tablet", bus="usb")
    _sub(devices, "memballoon", model="none")
    return ET.tostring(dom, encoding="unicode")


def parse_metadata(xml_text: str) -> dict[str, str] | None:
    """Our metadata of a domain's XML (uid, namespace, name, node, generation), or None."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    inst = root.find(f"metadata/{{{METADATA_NS}}}instance")
    if inst is None:
        return None
    return {child.tag.split("}", 1)[1]: child.text or "" for child in inst}


def disk_targets(xml_text: str) -> dict[str, str]:
    """source file -> target dev of a (live) domain XML."""
    out: dict[str, str] = {}
    root = ET.fromstring(xml_text)
    for disk in root.iter("disk"):
        src, tgt = disk.find("source"), disk.find("target")
        if src is not None and tgt is not None and src.get("file"):
            out[src.get("file", "")] = tgt.get("dev", "")
    return out


def guest_agent_state(xml_text: str) -> str:
    """`connected`, `disconnected` or `` for the guest agent channel of a live domain XML."""
    root = ET.fromstring(xml_text)
    for ch in root.iter("channel"):
        tgt = ch.find("target")
        if tgt is not None and tgt.get("name") == GUEST_AGENT_CHANNEL:
            return tgt.get("state", "")
    return ""
