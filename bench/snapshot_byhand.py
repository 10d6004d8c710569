"""The peer side of bench/snapshot's machine rows: snapshot, restore and clone of a stopped VM
done by hand with libvirt and qemu-img, on copies of our VM's volume files (so neither side
disturbs the other's files) in a domain defined from the XML our node handler wrote.

- snapshot: `virsh snapshot-create-as <dom> <name> --disk-only --atomic` — for an inactive
  domain libvirt makes an external qcow2 overlay per disk (`qemu-img create -b`) and points the
  domain at the overlays; the files underneath are the snapshot;
- restore: libvirt 9.0 refuses `snapshot-revert` of an external snapshot ("not supported yet"),
  so by hand as libvirt later does it: a fresh overlay on each snapshot file (`qemu-img create
  -b`), the domain defined again on those, the overlays written since the snapshot deleted;
- clone: `qemu-img convert -O qcow2` of each disk file to a new standalone file (what a clone
  that must outlive its source needs; also the copy peer of our snapshot and restore) — of our
  VM's own volume files, the very ones our clone copies, at the same step of the round: a copy's
  speed on these machines swings with how recently its source was written (our restore rewrote
  them seconds before; the overlays by hand leave the copies here untouched).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from bench.peer_domain import peer_domain_xml

URI = "qemu:///system"


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _sources(xml: str) -> list[str]:
    return [str(s.get("file")) for d in ET.fromstring(xml).iter("disk") if d.get("device") == "disk"
            for s in d.iter("source") if s.get("file")]


def _with_sources(xml: str, files: dict[str, str]) -> str:
    root = ET.fromstring(xml)
    for disk in root.iter("disk"):
        for src in disk.iter("source"):
            if src.get("file") in files:
                src.set("file", files[src.get("file", "")])
        for backing in list(disk.iter("backingStore")):
            disk.remove(backing)
    return ET.tostring(root, encoding="unicode")


class ByHand:
    """An inactive persistent domain `name` with its own copies of `dom`'s disk files in `work`."""

    def __init__(self, conn: libvirt.virConnect, dom: libvirt.virDomain, work: Path, name: str) -> None:
        self.conn, self.work, self.name = conn, work, name
        work.mkdir(parents=True, exist_ok=True)
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        self.bases = {}
        for src in _sources(xml):
            copy = work / Path(src).name
            _run("cp", "--sparse=always", src, str(copy))
            self.bases[src] = str(copy)
        self.xml = _with_sources(peer_domain_xml(xml, name=name, serial_log=work / "serial.log",
                                                 vnc_socket=str(work / "vnc.sock")), self.bases)
        self.dom = conn.defineXML(self.xml)
        self.xml = self.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)  # with the uuid libvirt gave it
        self.n = 0

    @property
    def files(self) -> list[str]:
        """The files the domain runs on now (overlays after a snapshot)."""
        return _sources(self.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))

    def data_file(self) -> str:
        return self.files[-1]

    def snapshot(self) -> float:
        self.n += 1
        t0 = time.monotonic()
        _run("virsh", "-c", URI, "snapshot-create-as", self.name, f"s{self.n}", "--disk-only", "--atomic")
        return time.monotonic() - t0

    def restore(self) -> float:
        """Back to the snapshot just taken; its files stay as they are (the snapshot is kept)."""
        written = self.files
        snapshot_files = list(self.bases.values())
        t0 = time.monotonic()
        fresh = {}
        for base, current in zip(snapshot_files, written, strict=True):
            fresh[current] = f"{current}.r"
            _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", fresh[current])
        self.dom = self.conn.defineXML(_with_sources(self.dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), fresh))
        for f in written:
            Path(f).unlink()
        return time.monotonic() - t0

    def reset(self) -> None:
        """Untimed, between rounds: the domain on the base files again, no snapshot left."""
        for f in self.files:
            if f not in self.bases.values():
                Path(f).unlink(missing_ok=True)
        for snap in self.dom.listAllSnapshots():
            snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
        self.dom = self.conn.defineXML(self.xml)

    def clone(self, files: list[str]) -> float:
        """`qemu-img convert` of every disk file to a new standalone qcow2."""
        targets = [self.work / f"clone-{i}.qcow2" for i in range(len(files))]
        t0 = time.monotonic()
        for src, target in zip(files, targets, strict=True):
            _run("qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", src, str(target))
        took = time.monotonic() - t0
        for target in targets:
            target.unlink()
        return took

    def close(self) -> None:
        try:
            self.reset()
        finally:
            self.dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        shutil.rmtree(self.work, ignore_errors=True)
