"""What a live migration carries, read from the domain XML the node handler builds (pure): copied
volumes vs read-only files the target must hold, directories to make, blockers, the destination
XML's node, and a timeout proportional to memory plus disk; the target's libvirt URI (TLS, this host's certificates)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controlplane.api.instance import parse_instance
from controlplane.api.internal import DomainType
from controlplane.nodehandler.domainxml import DomainInputs, ResolvedDisk, build_domain_xml, parse_metadata
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.migration import MigrationTarget, target_uri
from controlplane.nodehandler.migration_plan import (
    GIB,
    MIN_TIMEOUT,
    destination_xml,
    migration_timeout,
    plan_migration,
)

UID = "0b3c1f2e-7a4d-4e59-9a6b-2f1d3c4b5a69"


def _xml() -> str:
    spec = parse_instance({"metadata": {"name": "vm1", "namespace": "ns1", "uid": UID}, "spec": {
        "nodeName": "n1", "cpu": {"cores": 1}, "memory": {"size": "1Gi"},
        "disks": [{"name": "root", "volume": {"name": "root"}},
                  {"name": "iso", "image": {"ref": "file:///i.iso"}, "cdrom": True, "bootOrder": 2},
                  {"name": "data", "volume": {"name": "data"}, "bootOrder": 3}]}})
    disks = (ResolvedDisk(spec.disks[0], Path("/var/lib/dvp/volumes/ns1/root.u1.qcow2"), "qcow2"),
             ResolvedDisk(spec.disks[1], Path("/var/lib/dvp/images/abc.img"), "raw"),
             ResolvedDisk(spec.disks[2], Path("/var/lib/dvp/volumes/ns1/data.u2.qcow2"), "qcow2"))
    return build_domain_xml(DomainInputs(
        name="dvp-ns1_vm1", uid=UID, namespace="ns1", instance="vm1", node="n1", generation=1,
        domain_type=DomainType.QEMU, spec=spec, disks=disks, bridges={}, seed=Path(f"/var/lib/dvp/instances/{UID}/seed.iso"),
        serial_log=Path(f"/var/lib/dvp/instances/{UID}/serial.log"), vnc_socket=Path(f"/run/dvp/vnc/{UID}.sock")))


def test_volumes_are_copied_and_read_only_files_must_be_on_the_target() -> None:
    plan = plan_migration(_xml())
    assert [(d.dev, d.path) for d in plan.copied] == [("vda", "/var/lib/dvp/volumes/ns1/root.u1.qcow2"),
                                                      ("vdb", "/var/lib/dvp/volumes/ns1/data.u2.qcow2")]
    assert [d.path for d in plan.present] == ["/var/lib/dvp/images/abc.img", f"/var/lib/dvp/instances/{UID}/seed.iso"]
    assert plan.directories == ("/var/lib/dvp/volumes/ns1", "/var/lib/dvp/images", f"/var/lib/dvp/instances/{UID}",
                                "/run/dvp/vnc")
    assert plan.logs == (f"/var/lib/dvp/instances/{UID}/serial.log",)  # a failed migration removes the target's
    assert plan.memory_bytes == GIB
    assert plan.blockers == ()


@pytest.mark.parametrize("device,blocker", [
    ('<hostdev mode="subsystem" type="pci"><source><address domain="0" bus="1" slot="0" function="0"/></source>'
     '</hostdev>', "hostdev"),
    ('<disk type="block" device="disk"><source dev="/dev/sdz"/><target dev="vdz" bus="virtio"/></disk>', "block disk"),
    ('<filesystem type="mount"><source dir="/srv"/><target dir="srv"/></filesystem>', "filesystem"),
], ids=["host-device", "block-device", "host-directory"])
def test_what_cannot_follow_the_vm_blocks_it(device: str, blocker: str) -> None:
    root = ET.fromstring(_xml())
    devices = root.find("devices")
    assert devices is not None
    devices.append(ET.fromstring(device))
    plan = plan_migration(ET.tostring(root, encoding="unicode"))
    assert len(plan.blockers) == 1 and blocker in plan.blockers[0]


def test_an_empty_cdrom_tray_moves_as_it_is() -> None:
    root = ET.fromstring(_xml())
    devices = root.find("devices")
    assert devices is not None
    devices.append(ET.fromstring('<disk type="file" device="cdrom"><target dev="sdz" bus="sata"/></disk>'))
    assert plan_migration(ET.tostring(root, encoding="unicode")).blockers == ()


def test_destination_xml_names_the_target_node_and_keeps_the_rest() -> None:
    xml = _xml()
    dest = destination_xml(xml, "n2")
    meta = parse_metadata(dest)
    assert meta is not None and meta["node"] == "n2" and meta["uid"] == UID
    assert plan_migration(dest) == plan_migration(xml)


def test_destination_xml_drops_the_backing_chain_of_copied_disks() -> None:
    root = ET.fromstring(_xml())
    for disk in root.iter("disk"):  # as libvirt reports a running overlay of a snapshot's file (and the image's)
        disk.append(ET.fromstring('<backingStore type="file"><format type="qcow2"/>'
                                  '<source file="/var/lib/dvp/volumes/ns1/snap.u3.qcow2"/></backingStore>'))
    dest = ET.fromstring(destination_xml(ET.tostring(root, encoding="unicode"), "n2"))
    kept = {d.find("target").get("dev"): d.find("backingStore") is not None  # type: ignore[union-attr]
            for d in dest.iter("disk")}
    assert kept == {"vda": False, "sda": True, "vdb": False, "sdb": True}


@pytest.mark.parametrize("memory,disk,expected", [
    (GIB, 0, 150.0), (GIB, 2 * GIB, 450.0), (64 << 20, 0, MIN_TIMEOUT)], ids=["memory", "memory+disk", "minimum"])
def test_timeout_is_proportional_to_memory_and_disk(memory: int, disk: int, expected: float) -> None:
    assert migration_timeout(memory, disk) == expected


@pytest.mark.parametrize("address,pki_dir,uri", [
    ("10.0.0.2", Path("/var/lib/dvp/pki/libvirt"), "qemu+tls://10.0.0.2:16514/system?pkipath=/var/lib/dvp/pki/libvirt"),
    ("fd00::2", Path("/var/lib/dvp/pki/libvirt"), "qemu+tls://[fd00::2]:16514/system?pkipath=/var/lib/dvp/pki/libvirt"),
    ("10.0.0.2", Path("/tmp/a b"), "qemu+tls://10.0.0.2:16514/system?pkipath=/tmp/a%20b"),
    ("10.0.0.2", None, "qemu+tls://10.0.0.2:16514/system"),
], ids=["ipv4", "ipv6", "escaped", "default-pki"])
def test_target_uri_is_tls_with_this_hosts_certificates(address: str, pki_dir: Path | None, uri: str) -> None:
    assert target_uri(address, pki_dir=pki_dir) == uri


def test_migration_target_uses_the_layouts_libvirt_pki() -> None:
    layout = Layout(state_dir=Path("/var/lib/dvp"), run_dir=Path("/run/dvp"))
    target = MigrationTarget(node="n2", address="10.0.0.2", pki_dir=layout.libvirt_pki)
    assert target.libvirt_uri == "qemu+tls://10.0.0.2:16514/system?pkipath=/var/lib/dvp/pki/libvirt"
