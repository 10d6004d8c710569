"""Boot the guest test image under libvirt and talk to it: the helpers VM tests share.

Used by the integration tests of the guest image and, later, as the plain-libvirt peer of the
node handler's tests and `bench/vmstart`. A `GuestLauncher` gives each guest a copy-on-write
overlay of the cached image, a NoCloud seed (attached as a virtio disk, a virtio-SCSI cdrom or
a SATA cdrom), a NIC on the test bridge with a MAC bound to a chosen IP, and a serial console
whose output libvirt also writes to a log file; it starts transient domains of type `qemu`
(software emulation) and destroys them at cleanup. The guest's side of the contract (marker
line, HTTP endpoints) is described in docs/guest-image.md.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import libvirt

from controlplane.nodehandler.cloudinit_seed import SeedData, build_seed
from nodeimage.guest import GuestImage
from tests.services.libvirtd import domain_name_for
from tests.services.network import BridgeNetwork

SeedAttach = Literal["virtio-disk", "scsi-cdrom", "sata-cdrom"]
DiskBus = Literal["virtio", "sata"]
NicModel = Literal["virtio", "e1000", "e1000e"]

MARKER = re.compile(r"DVP-GUEST-READY hostname=(?P<hostname>\S+) ip=(?P<ip>\S+) instance-id=(?P<iid>\S+)[ \t\r]*\n")
"""The guest's ready line, whole: a serial log read while the guest writes it may end mid-line."""
POWEROFF = re.compile(r"DVP-GUEST-POWEROFF hostname=(?P<hostname>\S+)")


@dataclass(frozen=True)
class Marker:
    """The guest's ready line, parsed."""

    line: str
    hostname: str
    ip: str
    instance_id: str


def parse_marker(text: str) -> Marker | None:
    m = MARKER.search(text)
    if m is None:
        return None
    return Marker(line=m.group(0).rstrip(), hostname=m.group("hostname"), ip=m.group("ip"), instance_id=m.group("iid"))


def read_log(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace").replace("\r", "")
    except FileNotFoundError:
        return ""


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def wait_for_marker(serial_log: Path, *, timeout: float = 90.0) -> Marker:
    """The first ready marker in the serial log; fails with the log's tail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        text = read_log(serial_log)
        if marker := parse_marker(text):
            return marker
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no DVP-GUEST-READY line in {serial_log} after {timeout:.0f}s; last lines:\n{_tail(text)}"
            )
        time.sleep(0.2)


def http_get(ip: str, path: str = "/", *, timeout: float = 5.0, port: int = 80) -> str:
    """GET from the guest, bypassing any proxy configured in the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{ip}:{port}{path}", timeout=timeout) as resp:
        body: bytes = resp.read()
    return body.decode()


def guest_status(ip: str) -> dict[str, list[str]]:
    """`/cgi-bin/status` as key -> values (disks repeat the `disk` key)."""
    status: dict[str, list[str]] = {}
    for line in http_get(ip, "/cgi-bin/status").splitlines():
        key, sep, value = line.partition("=")
        if sep and " " not in key:
            status.setdefault(key, []).append(value)
    return status


def wait_for_shutoff(dom: libvirt.virDomain, *, timeout: float) -> float:
    """Seconds until the domain stopped running (a transient domain also disappears)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if not dom.isActive():
                return time.monotonic() - started
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return time.monotonic() - started
            raise
        time.sleep(0.1)
    raise TimeoutError(f"domain {dom.name()} still running {timeout:.0f}s after the shutdown request")


def console_exchange(
    conn: libvirt.virConnect, dom: libvirt.virDomain, command: str, expect: str, *, timeout: float = 20.0
) -> str:
    """Type `command` on the serial console through libvirt's console stream; return what came
    back once `expect` appeared in it (the guest runs a root shell on ttyS0)."""
    stream = conn.newStream(0)
    dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    received = bytearray()
    seen = threading.Event()

    def reader() -> None:
        try:
            while not seen.is_set():
                chunk = stream.recv(4096)
                if not isinstance(chunk, bytes) or not chunk:
                    return
                received.extend(chunk)
                if expect.encode() in received:
                    seen.set()
        except libvirt.libvirtError:
            return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        # a blocking stream's send can wait for ever (seen once: the console's input never taken):
        # it runs beside, and the exchange as a whole keeps its deadline
        if not _off_thread(lambda: stream.send(b"\n" + command.encode() + b"\n"), timeout):
            raise TimeoutError(f"{dom.name()}'s console did not take input within {timeout:.0f}s")
        if not seen.wait(max(0.0, deadline - time.monotonic())):
            text = received.decode("utf-8", "replace")
            raise TimeoutError(
                f"{expect!r} not seen on {dom.name()}'s console within {timeout:.0f}s; got:\n{_tail(text)}"
            )
    finally:
        seen.set()
        _off_thread(stream.abort, 10.0)
    return received.decode("utf-8", "replace")


def _off_thread(call: Callable[[], object], timeout: float) -> bool:
    """Run `call` in a daemon thread; whether it ended (returned or raised) within `timeout`
    seconds. A call left running is abandoned with its thread."""
    done = threading.Event()

    def run() -> None:
        try:
            with contextlib.suppress(libvirt.libvirtError):
                call()
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(timeout)


def make_overlay(base: Path, base_format: str, out: Path) -> Path:
    """A qcow2 file backed by `base`, so guests never write to the cached image."""
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format, str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


@dataclass
class GuestSpec:
    """One test guest's hardware: the knobs the node handler will also turn."""

    name: str
    disk: Path
    disk_format: str = "qcow2"
    disk_bus: DiskBus = "virtio"
    seed: Path | None = None
    seed_attach: SeedAttach = "virtio-disk"
    mac: str | None = None
    bridge: str | None = None
    nic_model: NicModel = "virtio"
    serial_log: Path | None = None
    memory_mib: int = 256
    vcpus: int = 1
    machine: str = "q35"


def domain_xml(spec: GuestSpec) -> str:
    """libvirt domain XML (type `qemu`: software emulation) for `spec`."""
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = spec.name
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "vcpu").text = str(spec.vcpus)
    os_ = ET.SubElement(dom, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine=spec.machine).text = "hvm"
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    ET.SubElement(dom, "clock", offset="utc")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        ET.SubElement(dom, event).text = action
    devices = ET.SubElement(dom, "devices")

    def disk(path: Path, fmt: str, device: str, target: str, bus: str, *, boot: bool, readonly: bool) -> None:
        d = ET.SubElement(devices, "disk", type="file", device=device)
        ET.SubElement(d, "driver", name="qemu", type=fmt)
        ET.SubElement(d, "source", file=str(path))
        ET.SubElement(d, "target", dev=target, bus=bus)
        if readonly:
            ET.SubElement(d, "readonly")
        if boot:
            ET.SubElement(d, "boot", order="1")

    boot_target = "vda" if spec.disk_bus == "virtio" else "sda"
    disk(spec.disk, spec.disk_format, "disk", boot_target, spec.disk_bus, boot=True, readonly=False)
    if spec.seed is not None:
        if spec.seed_attach == "virtio-disk":
            disk(spec.seed, "raw", "disk", "vdb", "virtio", boot=False, readonly=True)
        elif spec.seed_attach == "scsi-cdrom":
            ET.SubElement(devices, "controller", type="scsi", index="0", model="virtio-scsi")
            disk(spec.seed, "raw", "cdrom", "sdc", "scsi", boot=False, readonly=True)
        else:
            disk(spec.seed, "raw", "cdrom", "sdc", "sata", boot=False, readonly=True)
    if spec.bridge is not None:
        nic = ET.SubElement(devices, "interface", type="bridge")
        if spec.mac:
            ET.SubElement(nic, "mac", address=spec.mac)
        ET.SubElement(nic, "source", bridge=spec.bridge)
        ET.SubElement(nic, "model", type=spec.nic_model)
    serial = ET.SubElement(devices, "serial", type="pty")
    if spec.serial_log is not None:
        ET.SubElement(serial, "log", file=str(spec.serial_log), append="off")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    ET.SubElement(devices, "memballoon", model="none")
    return ET.tostring(dom, encoding="unicode")


@dataclass
class Guest:
    """A running test guest and how to reach it."""

    name: str
    domain: libvirt.virDomain
    spec: GuestSpec
    ip: str | None
    seed_data: SeedData | None
    image: GuestImage

    def wait_ready(self, *, timeout: float = 90.0) -> Marker:
        assert self.spec.serial_log is not None
        return wait_for_marker(self.spec.serial_log, timeout=timeout)

    def serial_text(self) -> str:
        return read_log(self.spec.serial_log) if self.spec.serial_log else ""


class GuestLauncher:
    """Starts transient test domains from the guest image and destroys them at `cleanup()`."""

    def __init__(
        self, conn: libvirt.virConnect, workdir: Path, *, network: BridgeNetwork | None = None
    ) -> None:
        self.conn = conn
        self.workdir = workdir
        self.network = network
        self._guests: list[Guest] = []

    def boot(
        self,
        name: str,
        image: GuestImage,
        *,
        image_format: Literal["qcow2", "raw"] = "qcow2",
        seed: SeedData | None = None,
        seed_attach: SeedAttach = "virtio-disk",
        disk_bus: DiskBus = "virtio",
        nic_model: NicModel = "virtio",
        memory_mib: int = 256,
    ) -> Guest:
        dom_name = domain_name_for(name)
        gdir = self.workdir / name
        gdir.mkdir(parents=True, exist_ok=True)
        base = image.qcow2 if image_format == "qcow2" else image.raw
        disk = make_overlay(base, image_format, gdir / "disk.qcow2")
        seed_path = build_seed(seed, gdir / "seed.iso") if seed is not None else None
        mac = ip = None
        if self.network is not None:
            mac, ip = self.network.allocate()
        spec = GuestSpec(
            name=dom_name, disk=disk, disk_bus=disk_bus, seed=seed_path, seed_attach=seed_attach,
            mac=mac, bridge=self.network.bridge if self.network else None, nic_model=nic_model,
            serial_log=gdir / "serial.log", memory_mib=memory_mib,
        )  # fmt: skip
        domain = self.conn.createXML(domain_xml(spec), 0)
        guest = Guest(name=dom_name, domain=domain, spec=spec, ip=ip, seed_data=seed, image=image)
        self._guests.append(guest)
        return guest

    def cleanup(self) -> None:
        for guest in self._guests:
            try:
                if guest.domain.isActive():
                    guest.domain.destroy()
            except libvirt.libvirtError:
                pass  # already gone (transient domains vanish when they stop)
        self._guests.clear()
