"""The guest test image boots under real libvirtd + QEMU and keeps its contract.

Three guests boot at once on a test bridge, covering the ways the node handler attaches
things: the cloud-kernel image as qcow2 with the seed as a virtio disk, the same image as raw
with the seed as a virtio-SCSI cdrom, and the generic-kernel image on a SATA disk with a SATA
cdrom seed and an e1000 NIC (paravirtualization off). For each: the ready marker with the
seed's host name on the serial console, the DHCP address chosen for its MAC, the same line
over HTTP from the host, a live uptime, and power-off on the ACPI power button.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import libvirt
import pytest

from controlplane.nodehandler.cloudinit_seed import SeedData
from nodeimage.guest import GuestImage
from tests.services.guests import (
    POWEROFF,
    Guest,
    GuestLauncher,
    console_exchange,
    guest_status,
    http_get,
    wait_for_shutoff,
)
from tests.services.network import BridgeNetwork

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    id: str
    flavour: str
    image_format: str
    seed_attach: str
    disk_bus: str
    nic_model: str


CASES = [
    Case("virtio-qcow2", "cloud", "qcow2", "virtio-disk", "virtio", "virtio"),
    Case("scsi-cdrom-raw", "cloud", "raw", "scsi-cdrom", "virtio", "virtio"),
    Case("sata-e1000", "generic", "qcow2", "sata-cdrom", "sata", "e1000"),
]
IDS = [c.id for c in CASES]


@pytest.fixture(scope="module")
def guests(
    libvirt_conn: libvirt.virConnect,
    vm_bridge: BridgeNetwork,
    guest_image: GuestImage,
    guest_image_generic: GuestImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Guest]]:
    launcher = GuestLauncher(libvirt_conn, tmp_path_factory.mktemp("guest-image"), network=vm_bridge)
    images = {"cloud": guest_image, "generic": guest_image_generic}
    booted = {}
    try:
        for case in CASES:
            seed = SeedData(
                instance_id=f"iid-{case.id}",
                local_hostname=f"vm-{case.id}",
                user_data=f"#!/bin/sh\necho USER-DATA-RAN-{case.id}\n",
            )
            booted[case.id] = launcher.boot(
                case.id,
                images[case.flavour],
                image_format=case.image_format,  # type: ignore[arg-type]
                seed=seed,
                seed_attach=case.seed_attach,  # type: ignore[arg-type]
                disk_bus=case.disk_bus,  # type: ignore[arg-type]
                nic_model=case.nic_model,  # type: ignore[arg-type]
            )
        yield booted
    finally:
        launcher.cleanup()


@pytest.mark.parametrize("case_id", IDS)
def test_marker_with_seed_hostname_and_dhcp_ip_on_serial_console(
    guests: dict[str, Guest], case_id: str
) -> None:
    guest = guests[case_id]
    marker = guest.wait_ready()
    assert guest.seed_data is not None
    assert marker.hostname == guest.seed_data.local_hostname
    assert marker.instance_id == guest.seed_data.instance_id
    assert marker.ip == guest.ip, f"guest took {marker.ip}, dnsmasq was told to give {guest.ip}"


@pytest.mark.parametrize("case_id", IDS)
def test_guest_answers_http_from_host_with_the_same_line(guests: dict[str, Guest], case_id: str) -> None:
    guest = guests[case_id]
    marker = guest.wait_ready()
    assert guest.ip is not None
    assert http_get(guest.ip, "/").strip() == marker.line

    first = guest_status(guest.ip)
    time.sleep(1.2)
    second = guest_status(guest.ip)
    assert first["hostname"] == [marker.hostname]
    assert first["boot-id"] == second["boot-id"]
    assert float(second["uptime"][0]) > float(first["uptime"][0]) >= 0.5
    assert float(http_get(guest.ip, "/cgi-bin/uptime")) >= float(second["uptime"][0])
    # the boot disk is seen at the image's size
    sizes = {d.split()[0]: int(d.split()[1]) for d in first["disk"]}
    boot_dev = "vda" if guest.spec.disk_bus == "virtio" else "sda"
    assert sizes[boot_dev] == guest.image.manifest["raw_size"]


@pytest.mark.parametrize("case_id", IDS)
def test_user_data_script_runs_once_after_the_marker(guests: dict[str, Guest], case_id: str) -> None:
    guest = guests[case_id]
    guest.wait_ready()
    assert guest.ip is not None
    deadline = time.monotonic() + 15
    while "user-data-rc" not in (status := guest_status(guest.ip)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status.get("user-data-rc") == ["0"]
    assert guest.serial_text().count(f"USER-DATA-RAN-{case_id}") == 1
    assert guest.seed_data is not None
    assert http_get(guest.ip, "/cloud/user-data") == guest.seed_data.user_data


def test_serial_console_is_an_interactive_shell(
    libvirt_conn: libvirt.virConnect, guests: dict[str, Guest]
) -> None:
    guest = guests["virtio-qcow2"]
    guest.wait_ready()
    # the answer (42) differs from what is typed, so the shell's echo of the input can't match
    text = console_exchange(
        libvirt_conn, guest.domain, "echo console-$((6 * 7))-$(hostname)", "console-42-vm-virtio-qcow2"
    )
    assert "console-42-vm-virtio-qcow2" in text


@pytest.mark.parametrize("case_id", IDS)
def test_acpi_shutdown_powers_the_guest_off(guests: dict[str, Guest], case_id: str) -> None:
    guest = guests[case_id]
    marker = guest.wait_ready()
    guest.domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
    wait_for_shutoff(guest.domain, timeout=15)
    poweroff = POWEROFF.search(guest.serial_text())
    assert poweroff is not None, "the guest's shutdown script did not run"
    assert poweroff.group("hostname") == marker.hostname
