"""Hardware choices reach the guest: with paravirtualization off the disk is SATA and the NIC
e1000 (the generic-kernel guest boots from it and gets its IP by DHCP); firmware EFI runs OVMF.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import libvirt
import pytest

from controlplane.nodehandler.context import INSTANCES
from nodeimage.guest import GuestImage
from tests.integration.nodehandler.support import NodeEnv, instance, read_log_from, volume, wait_for
from tests.services.guests import http_get

pytestmark = pytest.mark.integration
NS = "devices"


@pytest.fixture(scope="module")
def ns(node_env: NodeEnv) -> Iterator[str]:
    if not node_env.agent.alive():
        node_env.agent.start()
    node_env.ensure_namespace(NS)
    yield NS
    for name in ("vm-sata", "vm-efi"):
        node_env.kube.delete_if_exists(INSTANCES, name, NS)


def test_paravirtualization_off_boots_on_sata_and_e1000(node_env: NodeEnv, ns: str, guest_image_generic: GuestImage,
                                                        libvirt_conn: libvirt.virConnect) -> None:
    env = node_env
    env.boot_volume("sata-root", NS, image=guest_image_generic.qcow2)
    ip = env.agent.guest_ip(60)
    obj = env.create_instance(instance("vm-sata", env.node, namespace=NS, hostname="vm-sata", grace=5,
                                       paravirtualization=False, machineType="q35",
                                       disks=[{"name": "root", "volume": {"name": "sata-root"}}],
                                       nics=[{"name": "default", "mac": "52:54:00:5a:7a:01", "ip": ip}]))
    uid = obj["metadata"]["uid"]
    marker = env.wait_marker(uid)
    assert (marker.hostname, marker.ip) == ("vm-sata", ip)
    assert http_get(ip, "/").strip() == marker.line
    xml = ET.fromstring(libvirt_conn.lookupByUUIDString(uid).XMLDesc(0))
    assert {d.find("target").get("bus") for d in xml.iter("disk")} == {"sata"}  # type: ignore[union-attr]
    assert [m.get("type") for m in xml.iter("model") if m.get("type") in ("e1000", "virtio")] == ["e1000"]
    assert xml.find("os/type").get("machine", "").startswith("pc-q35")  # type: ignore[union-attr]


def test_efi_firmware_runs_ovmf(node_env: NodeEnv, ns: str, libvirt_conn: libvirt.virConnect) -> None:
    env = node_env
    env.create_volume(volume("efi-disk", env.node, "16Mi", namespace=NS))
    env.volume_ready("efi-disk", NS)
    obj = env.create_instance(instance("vm-efi", env.node, namespace=NS, firmware="EFI", machineType="q35", grace=0,
                                       disks=[{"name": "root", "volume": {"name": "efi-disk"}}]))
    uid = obj["metadata"]["uid"]
    env.wait_phase("vm-efi", "Running", namespace=NS)
    loader = ET.fromstring(libvirt_conn.lookupByUUIDString(uid).XMLDesc(0)).find("os/loader")
    assert loader is not None and "OVMF" in (loader.text or "")
    # with nothing bootable on its disk, OVMF's boot manager says so on the serial console
    wait_for(lambda: "BdsDxe" in read_log_from(env.serial(uid), 0), timeout=60, what="OVMF output on the console")
