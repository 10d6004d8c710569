"""What a live migration moves, read from the running domain's XML: pure, unit-tested without libvirt.

A domain of this node handler (domainxml.py) has three kinds of files, all at the same paths on
every node (layout.py):
- writable disks (volumes, qcow2): copied by QEMU over NBD during the migration, into files of
  the same virtual size pre-created on the target (`migrate_disks` lists their target devs);
- read-only disks (cached images, the NoCloud seed): read by the target QEMU from its own copy,
  which must be there before the migration starts (the target pulls images itself; a file that
  is missing there is uploaded through the target's libvirtd);
- directories QEMU and virtlogd write into (the serial log's instance directory, the VNC socket's
  directory), which must exist on the target.

The destination XML is the source's with our metadata's `node` set to the target, so the
target's handler adopts the domain as its own and the source's stops claiming it, and without
the `backingStore` chains of the copied disks: a volume may be an overlay on a snapshot's file
(`volume_chain`), but the mirror copies the whole chain into the target's flat file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import PurePosixPath

from controlplane.nodehandler.domainxml import METADATA_KEY, METADATA_NS

DEFAULT_TIMEOUT_PER_GIB = 150.0
"""Seconds allowed per GiB of memory plus copied disk (KubeVirt's completionTimeoutPerGiB)."""
MIN_TIMEOUT = 60.0
GIB = 1 << 30


@dataclass(frozen=True)
class DiskCopy:
    """One file disk of the domain and what the migration does with it."""

    dev: str
    path: str
    format: str
    read_only: bool
    device: str  # disk | cdrom

    @property
    def copied(self) -> bool:
        """Whether QEMU copies it during the migration (writable disks only)."""
        return not self.read_only and self.device == "disk"


@dataclass(frozen=True)
class MigrationPlan:
    disks: tuple[DiskCopy, ...]
    directories: tuple[str, ...]
    """Directories that must exist on the target (disks' parents, serial log, VNC socket)."""
    memory_bytes: int
    blockers: tuple[str, ...]
    """Why the domain cannot be migrated live (empty when it can)."""
    logs: tuple[str, ...] = ()
    """Files virtlogd writes on whichever node runs the domain (the serial log): a failed
    migration leaves the target's to remove."""

    @property
    def copied(self) -> tuple[DiskCopy, ...]:
        return tuple(d for d in self.disks if d.copied)

    @property
    def present(self) -> tuple[DiskCopy, ...]:
        """Read-only files the target must hold before the migration starts."""
        return tuple(d for d in self.disks if not d.copied)


def plan_migration(xml_text: str) -> MigrationPlan:
    root = ET.fromstring(xml_text)
    disks: list[DiskCopy] = []
    dirs: list[str] = []
    blockers: list[str] = []

    def need_dir(path: str) -> None:
        parent = str(PurePosixPath(path).parent)
        if parent not in dirs:
            dirs.append(parent)

    for disk in root.iter("disk"):
        src, tgt, drv = disk.find("source"), disk.find("target"), disk.find("driver")
        dev = tgt.get("dev", "") if tgt is not None else ""
        device = disk.get("device", "disk")
        path = src.get("file") if src is not None else None
        if disk.get("type") != "file" or not path:
            if device == "cdrom" and (src is None or not (src.get("file") or src.get("dev"))):
                continue  # an empty tray moves as it is
            blockers.append(f"disk {dev or '?'} is a {disk.get('type')} {device}, not a local file")
            continue
        disks.append(DiskCopy(dev=dev, path=path, format=drv.get("type", "raw") if drv is not None else "raw",
                              read_only=disk.find("readonly") is not None or device == "cdrom", device=device))
        need_dir(path)
    logs: list[str] = []
    for log in root.iter("log"):
        if log.get("file"):
            need_dir(log.get("file", ""))
            logs.append(log.get("file", ""))
    for graphics in root.iter("graphics"):
        if graphics.get("socket"):
            need_dir(graphics.get("socket", ""))
    devices = root.find("devices")
    for el in list(devices) if devices is not None else []:
        if el.tag in ("hostdev", "filesystem"):
            blockers.append(f"a {el.tag} device is attached (it cannot follow the VM to another host)")
    memory = root.find("memory")
    mem = int(memory.text or 0) * _unit(memory.get("unit", "KiB")) if memory is not None else 0
    return MigrationPlan(disks=tuple(disks), directories=tuple(dirs), memory_bytes=mem, blockers=tuple(blockers),
                         logs=tuple(logs))


def _unit(unit: str) -> int:
    return {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1 << 20, "mib": 1 << 20, "g": GIB,
            "gib": GIB}.get(unit.lower(), 1024)


def destination_xml(xml_text: str, node: str) -> str:
    """The domain XML with our metadata's node set to `node` (the rest as the source runs it)."""
    ET.register_namespace(METADATA_KEY, METADATA_NS)
    root = ET.fromstring(xml_text)
    el = root.find(f"metadata/{{{METADATA_NS}}}instance/{{{METADATA_NS}}}node")
    if el is not None:
        el.text = node
    for disk in root.iter("disk"):
        if disk.get("type") == "file" and disk.get("device", "disk") != "cdrom" and disk.find("readonly") is None:
            for backing in disk.findall("backingStore"):
                disk.remove(backing)
    return ET.tostring(root, encoding="unicode")


def migration_timeout(memory_bytes: int, disk_bytes: int, *, per_gib: float = DEFAULT_TIMEOUT_PER_GIB,
                      minimum: float = MIN_TIMEOUT) -> float:
    """How long a migration may take: proportional to what it moves (memory plus copied disks)."""
    return max(minimum, per_gib * (memory_bytes + disk_bytes) / GIB)
