"""The pure parts of the VM test services: qemu.conf editing, domain XML, marker parsing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.services.guests import GuestSpec, domain_xml, parse_marker
from tests.services.libvirtd import qemu_conf_text


def _active(text: str) -> dict[str, str]:
    pairs = [
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#")
    ]
    return {k.strip(): v.strip() for k, v in pairs}


@pytest.mark.parametrize(
    "current",
    ["", '#user = "root"\nvnc_listen = "0.0.0.0"\n', 'user = "libvirt-qemu"\nsecurity_driver = "apparmor"\n'],
    ids=["empty", "commented-defaults", "conflicting-settings"],
)
def test_qemu_conf_gets_our_settings_once_and_keeps_the_rest(current: str) -> None:
    first = qemu_conf_text(current)
    assert qemu_conf_text(first) == first, "idempotent"
    active = _active(first)
    assert active["user"] == '"root"'
    assert active["security_driver"] == '"none"'
    assert active["cgroup_controllers"] == "[ ]"
    assert sum(1 for line in first.splitlines() if line.startswith("user =")) == 1
    if "vnc_listen" in current:
        assert active["vnc_listen"] == '"0.0.0.0"'


def test_marker_parsing() -> None:
    text = "noise\r\n/ # DVP-GUEST-READY hostname=vm-1 ip=10.200.0.10 instance-id=i-9\r\nmore"
    marker = parse_marker(text)
    assert marker is not None
    assert (marker.hostname, marker.ip, marker.instance_id) == ("vm-1", "10.200.0.10", "i-9")
    assert marker.line == "DVP-GUEST-READY hostname=vm-1 ip=10.200.0.10 instance-id=i-9"
    assert parse_marker("DVP-GUEST-READY hostname=vm-1") is None
    # a serial log read while the guest writes the line: not a marker until the line ends
    assert parse_marker("DVP-GUEST-READY hostname=vm-1 ip=10.200.0.10 instance-id=i-9abc") is None


def test_domain_xml_with_paravirtualization_off() -> None:
    spec = GuestSpec(
        name="dvpt-1-x", disk=Path("/d.qcow2"), disk_bus="sata", seed=Path("/s.iso"), seed_attach="sata-cdrom",
        mac="52:54:00:00:00:01", bridge="dvpt000001", nic_model="e1000", serial_log=Path("/serial.log"),
    )  # fmt: skip
    dom = ET.fromstring(domain_xml(spec))
    assert dom.get("type") == "qemu"
    disks = [(d.get("device"), d.find("target").get("bus")) for d in dom.iter("disk")]  # type: ignore[union-attr]
    assert disks == [("disk", "sata"), ("cdrom", "sata")]
    assert dom.find("devices/disk/boot").get("order") == "1"  # type: ignore[union-attr]
    assert dom.find("devices/interface/model").get("type") == "e1000"  # type: ignore[union-attr]
    assert dom.find("devices/interface/source").get("bridge") == "dvpt000001"  # type: ignore[union-attr]
    assert dom.find("devices/serial/log").get("file") == "/serial.log"  # type: ignore[union-attr]


def test_domain_xml_scsi_cdrom_seed_adds_a_virtio_scsi_controller() -> None:
    spec = GuestSpec(name="n", disk=Path("/d"), seed=Path("/s.iso"), seed_attach="scsi-cdrom")
    dom = ET.fromstring(domain_xml(spec))
    assert [c.get("model") for c in dom.iter("controller")] == ["virtio-scsi"]
    assert dom.find("devices/interface") is None
