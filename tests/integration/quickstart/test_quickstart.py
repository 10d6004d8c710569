"""DVP's quick start, end to end, on the embedded default: an image imported from HTTP into
DVCR, a disk from it, a VM with cloud-init user data on it — through real kubectl, real DVCR,
the real node handler on libvirt + QEMU; then its console, its IP, and its power operations."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error

import pytest

from controlplane.api.resources import VIRTUAL_DISKS, VIRTUAL_IMAGES, VIRTUAL_MACHINES
from tests.integration.quickstart.manifests import vd_from_image, vi_http, vm, vmop
from tests.integration.quickstart.platform import Platform
from tests.services.guests import http_get, parse_marker, wait_for_marker

pytestmark = pytest.mark.integration

USER_DATA = "#!/bin/sh\necho provisioned-by-user-data > /www/provisioned.txt\n"


def _collapse(phases: list[str]) -> list[str]:
    return [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]


@pytest.fixture(scope="module")
def running_vm(platform: Platform) -> dict:
    recorder = platform.record_phases(VIRTUAL_IMAGES, VIRTUAL_DISKS, VIRTUAL_MACHINES)
    platform.apply(vi_http("guest", platform.images.url("dvp-guest-cloud.qcow2")))
    vi = platform.phase("vi", "guest", "Ready", timeout=120)
    platform.apply(vd_from_image("guest-root", "guest"), vm("quick", "guest-root", user_data=USER_DATA))
    running = platform.phase("vm", "quick", "Running", timeout=180)
    vd = platform.phase("vd", "guest-root", "Ready", timeout=30)
    running["_phases"] = {"vi": recorder.phases("VirtualImage", "guest"), "vd": recorder.phases("VirtualDisk", "guest-root"),
                          "vm": recorder.phases("VirtualMachine", "quick")}
    running["_vi"], running["_vd"] = vi, vd
    return running


def test_quick_start_reaches_running_through_each_phase(platform: Platform, running_vm: dict) -> None:
    phases = running_vm["_phases"]
    assert "Provisioning" in phases["vi"] and phases["vi"][-1] == "Ready", phases
    assert phases["vd"][-1] == "Ready" and "Provisioning" in phases["vd"], phases
    assert phases["vm"][-1] == "Running" and "Starting" in phases["vm"], phases
    assert phases["vm"].index("Starting") > 0 and phases["vm"][0] == "Pending", phases
    vi = running_vm["_vi"]["status"]
    assert vi["format"] == "qcow2" and vi["progress"] == "100%" and vi["target"]["registryURL"]
    vd = running_vm["_vd"]["status"]
    assert vd["attachedToVirtualMachines"] == [{"name": "quick", "mounted": True}] or \
        vd["attachedToVirtualMachines"][0]["name"] == "quick"
    status = running_vm["status"]
    assert status["nodeName"] == platform.node
    assert status["ipAddress"] in str(platform.network.subnet) or status["ipAddress"].startswith(
        str(platform.network.subnet.network_address).rsplit(".", 1)[0])
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    for ready in ("BlockDevicesReady", "VirtualMachineClassReady", "VirtualMachineIPAddressReady", "Running"):
        assert conds.get(ready) == "True", (ready, status["conditions"])
    assert len(platform.domains()) == 1


def test_guest_boots_with_its_ip_and_user_data(platform: Platform, running_vm: dict) -> None:
    marker = wait_for_marker(platform.serial_log(running_vm), timeout=120)
    ip = running_vm["status"]["ipAddress"]
    # the guest's NIC has the MAC of the VM's VirtualMachineMACAddress, leased under the platform's prefix
    mac = running_vm["status"]["networks"][0]["macAddress"]
    inst = platform.get("internalvirtualmachineinstances.internal.virtualization.deckhouse.io", "quick")
    assert [n["mac"] for n in inst["spec"]["nics"]] == [mac] and mac.startswith("02:d8:76:")
    assert platform.get("vmmacl", "mac-" + mac.replace(":", "-"))["spec"]["virtualMachineMACAddressRef"]["name"] \
        == running_vm["status"]["networks"][0]["virtualMachineMACAddressName"]
    assert marker.hostname == "quick" and marker.ip == ip
    assert parse_marker(http_get(ip)) == marker
    # the guest runs a user-data script right after its marker line
    deadline = time.monotonic() + 30
    while True:
        try:
            assert http_get(ip, "/provisioned.txt", timeout=5).strip() == "provisioned-by-user-data"
            break
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_console_through_the_api_server(platform: Platform, running_vm: dict) -> None:
    wait_for_marker(platform.serial_log(running_vm), timeout=120)
    out = subprocess.run(
        [sys.executable, "-m", "installer.cli.main", "v", "console", "quick", "--timeout", "4",
         "--kubeconfig", str(platform.server.kubeconfig)],
        input="\ncat /run/marker\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    marker = parse_marker(out.stdout)
    assert marker is not None and marker.hostname == "quick", out.stdout[-2000:]


def test_stop_start_restart_through_operations(platform: Platform, running_vm: dict) -> None:
    uid_before = platform.get("internalvirtualmachineinstances.internal.virtualization.deckhouse.io",
                              "quick")["metadata"]["uid"]
    platform.apply(vmop("quick-stop", "quick", "Stop"))
    platform.phase("vmop", "quick-stop", "Completed", timeout=90)
    platform.phase("vm", "quick", "Stopped", timeout=30)
    assert not [d for d in platform.domains() if d.isActive()]
    platform.apply(vmop("quick-start", "quick", "Start"))
    platform.phase("vmop", "quick-start", "Completed", timeout=90)
    vm_obj = platform.phase("vm", "quick", "Running", timeout=30)
    wait_for_marker(platform.serial_log(vm_obj), timeout=120)
    boots_before = platform.serial_log(vm_obj).read_text(errors="replace").count("DVP-GUEST-READY")
    platform.apply(vmop("quick-restart", "quick", "Restart"))
    platform.phase("vmop", "quick-restart", "Completed", timeout=120)
    vm_obj = platform.phase("vm", "quick", "Running", timeout=60)

    def rebooted() -> bool:
        return platform.serial_log(vm_obj).read_text(errors="replace").count("DVP-GUEST-READY") > boots_before
    platform.wait("vm", "quick", lambda _o: rebooted(), timeout=120, what="the guest booted again")
    assert uid_before  # the instance object may be re-created on restart; the VM stays one domain
    assert len(platform.domains()) == 1
