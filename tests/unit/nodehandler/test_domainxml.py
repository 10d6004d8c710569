"""Domain XML from instances (pure): buses and models by paravirtualization, boot order, seed,
firmware, CPU by domain type, console, VNC socket, guest agent channel, identity metadata."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.instance import parse_instance
from controlplane.api.internal import DomainType
from controlplane.nodehandler.domainxml import (
    DomainInputs,
    ResolvedDisk,
    build_domain_xml,
    disk_targets,
    guest_agent_state,
    parse_metadata,
)

UID = "0b3c1f2e-7a4d-4e59-9a6b-2f1d3c4b5a69"


def _obj(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "nodeName": "n1", "cpu": {"cores": 2}, "memory": {"size": "1Gi"},
        "disks": [{"name": "root", "volume": {"name": "root-vol"}},
                  {"name": "iso", "image": {"ref": "file:///i.iso"}, "cdrom": True, "bootOrder": 2},
                  {"name": "data", "volume": {"name": "data-vol"}, "bootOrder": 3}],
        "nics": [{"name": "default", "mac": "52:54:00:00:00:01", "ip": "10.66.0.10"}],
    }
    base.update(spec)
    return {"metadata": {"name": "vm1", "namespace": "ns1", "uid": UID, "generation": 3}, "spec": base}


def _xml(dtype: DomainType = DomainType.QEMU, *, cpu_quota: bool = True, **spec: Any) -> ET.Element:
    parsed = parse_instance(_obj(**spec))
    disks = tuple(ResolvedDisk(d, Path(f"/v/{d.name}"), "raw" if d.cdrom else "qcow2") for d in parsed.disks)
    text = build_domain_xml(DomainInputs(
        name="dvp-ns1_vm1", uid=UID, namespace="ns1", instance="vm1", node="n1", generation=3, domain_type=dtype,
        spec=parsed, disks=disks, bridges={"default": "dvpbr0"}, seed=Path("/s/seed.iso"),
        serial_log=Path("/s/serial.log"), vnc_socket=Path("/run/dvp/vnc/x.sock"), cpu_quota=cpu_quota))
    return ET.fromstring(text)


def _disks(dom: ET.Element) -> list[tuple[str, str, str, str | None, bool]]:
    out = []
    for d in dom.iter("disk"):
        boot = d.find("boot")
        out.append((d.get("device", ""), d.find("source").get("file", ""), d.find("target").get("bus", ""),  # type: ignore[union-attr]
                    boot.get("order") if boot is not None else None, d.find("readonly") is not None))
    return out


@pytest.mark.parametrize("paravirt,disk_bus,cdrom_bus,nic", [(True, "virtio", "scsi", "virtio"),
                                                            (False, "sata", "sata", "e1000")],
                         ids=["paravirtualized", "emulated-devices"])
def test_buses_and_models_follow_paravirtualization(paravirt: bool, disk_bus: str, cdrom_bus: str, nic: str) -> None:
    dom = _xml(paravirtualization=paravirt)
    assert _disks(dom) == [
        ("disk", "/v/root", disk_bus, "1", False),
        ("cdrom", "/v/iso", cdrom_bus, "2", True),
        ("disk", "/v/data", disk_bus, "3", False),
        ("cdrom", "/s/seed.iso", cdrom_bus, None, True),  # the NoCloud seed, never booted from
    ]
    iface = dom.find("devices/interface")
    assert iface is not None and iface.get("type") == "bridge"
    assert iface.find("source").get("bridge") == "dvpbr0"  # type: ignore[union-attr]
    assert iface.find("mac").get("address") == "52:54:00:00:00:01"  # type: ignore[union-attr]
    assert iface.find("model").get("type") == nic  # type: ignore[union-attr]
    scsi = [c for c in dom.iter("controller") if c.get("type") == "scsi"]
    assert bool(scsi) == paravirt


def test_boot_order_follows_disk_order_not_list_order() -> None:
    dom = _xml(disks=[{"name": "b", "volume": {"name": "vb"}, "bootOrder": 2},
                      {"name": "a", "volume": {"name": "va"}, "bootOrder": 1}])
    assert [(src, order) for _, src, _, order, _ in _disks(dom)][:2] == [("/v/a", "1"), ("/v/b", "2")]
    assert [d.find("target").get("dev") for d in dom.iter("disk")][:2] == ["vda", "vdb"]  # type: ignore[union-attr]


def test_identity_metadata_and_uuid() -> None:
    dom = _xml()
    assert dom.findtext("uuid") == UID and dom.findtext("name") == "dvp-ns1_vm1"
    assert parse_metadata(ET.tostring(dom, encoding="unicode")) == {
        "uid": UID, "namespace": "ns1", "name": "vm1", "node": "n1", "generation": "3"}


def test_emulation_uses_the_maximum_cpu_and_kvm_host_model() -> None:
    assert _xml(DomainType.QEMU).get("type") == "qemu"
    assert _xml(DomainType.QEMU).find("cpu").get("mode") == "maximum"  # type: ignore[union-attr]
    kvm = _xml(DomainType.KVM)
    assert kvm.get("type") == "kvm" and kvm.find("cpu").get("mode") == "host-model"  # type: ignore[union-attr]
    named = _xml(DomainType.KVM, cpu={"cores": 2, "sockets": 2, "model": "EPYC"})
    assert named.findtext("cpu/model") == "EPYC" and named.findtext("vcpu") == "4"
    assert named.find("cpu/topology").attrib == {"sockets": "2", "dies": "1", "cores": "2", "threads": "1"}  # type: ignore[union-attr]


def test_memory_firmware_and_core_fraction() -> None:
    dom = _xml(firmware="EFI", machineType="q35", cpu={"cores": 1, "coreFraction": "25%"})
    assert dom.findtext("memory") == str(2**30 // 1024) and dom.find("memory").get("unit") == "KiB"  # type: ignore[union-attr]
    assert dom.find("os").get("firmware") == "efi"  # type: ignore[union-attr]
    assert dom.find("os/type").get("machine") == "q35"  # type: ignore[union-attr]
    assert dom.findtext("cputune/quota") == "25000"
    bios = _xml()
    assert bios.find("os").get("firmware") is None and bios.find("cputune") is None  # type: ignore[union-attr]
    # a host whose libvirt has no cgroup cpu controller: no quota (the instance status says so)
    assert _xml(cpu_quota=False, cpu={"cores": 1, "coreFraction": "25%"}).find("cputune") is None


def test_console_vnc_and_guest_agent_devices() -> None:
    dom = _xml()
    serial = dom.find("devices/serial")
    assert serial is not None and serial.get("type") == "pty"
    assert serial.find("log").get("file") == "/s/serial.log"  # type: ignore[union-attr]
    assert dom.find("devices/console/target").get("type") == "serial"  # type: ignore[union-attr]
    assert dom.find("devices/graphics").get("socket") == "/run/dvp/vnc/x.sock"  # type: ignore[union-attr]
    assert dom.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"  # type: ignore[union-attr]
    assert _xml(vnc=False).find("devices/graphics") is None


def test_live_xml_helpers() -> None:
    live = ("<domain><devices><disk><source file='/v/a'/><target dev='vda'/></disk>"
            "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0' state='connected'/></channel>"
            "</devices></domain>")
    assert disk_targets(live) == {"/v/a": "vda"}
    assert guest_agent_state(live) == "connected"
