"""VirtualDiskSnapshot end to end with DVP's user-guide manifests (tests/fixtures/dvp_docs),
applied with kubectl 1.33 to a whole platform on libvirt + QEMU.

A VM runs from `linux-vm-root`. The guide's snapshot (requiredConsistency: true) of its running
disk fails as DVP documents (`PotentiallyInconsistent`: the test guest has no agent to freeze);
taken again with the VM stopped it is Ready and consistent. The disk is then changed, the VM and
the disk deleted, and the guide's recovery manifest makes `linux-vm-root` again from the
snapshot: it holds the content of snapshot time, not the change, and the VM boots from it.
A VirtualImage and a ClusterVirtualImage made from the snapshot hold its content; an image of
the disk while its VM runs waits, saying why. The restored disk is an overlay on the snapshot's
file: deleting the snapshot waits while the VM runs, and once it is stopped leaves the disk
standalone with the same content, and it boots again (after the VM snapshot and restore below).
The VMOP Restore from the VM snapshot puts the unchanged disk back in place (its volume reverted,
the disk object kept), and after the disk's labels change makes it again from its snapshot.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from controlplane.dvcr.credentials import DvcrConnection
from controlplane.dvcr.pull import pull_disk
from tests.integration.quickstart.manifests import API, vd_from_image, vi_http, vm, vmop
from tests.integration.quickstart.platform import Platform
from tests.services.apiserver import KUBECTL_V33
from tests.services.guests import MARKER, parse_marker, read_log

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "fixtures" / "dvp_docs"
SNAPSHOT = "linux-vm-root-1728027905"
VOLUMES = "internalvirtualdiskvolumes.internal.virtualization.deckhouse.io"


def k33(platform: Platform, *args: str, input: str | None = None, check: bool = True) -> str:
    assert KUBECTL_V33.exists(), f"{KUBECTL_V33} missing: run `make setup`"
    env = {**os.environ, "KUBECONFIG": str(platform.server.kubeconfig), "HOME": str(platform.server.home)}
    out = subprocess.run([str(KUBECTL_V33), *args], env=env, capture_output=True, text=True, input=input, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


def apply_doc(platform: Platform, name: str) -> None:
    k33(platform, "apply", "-f", str(DOCS / name))


def gone(platform: Platform, resource: str, name: str) -> None:
    k33(platform, "delete", resource, name, "--wait=false")
    deadline = time.monotonic() + 90
    while platform.get(resource, name):
        assert time.monotonic() < deadline, f"{resource}/{name} not deleted in 90s"
        time.sleep(0.3)


def backing_of(path: str) -> str | None:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], check=True, capture_output=True, text=True)
    found: str | None = json.loads(out.stdout).get("backing-filename")
    return found


def head_digest(path: str, mib: int = 4) -> str:
    """sha256 of the first `mib` MiB the guest sees on a qcow2 volume."""
    out = Path(path).with_name(f".{Path(path).name}.head.raw")
    subprocess.run(["qemu-img", "dd", "-U", "-f", "qcow2", "-O", "raw", "bs=1M", f"count={mib}", f"if={path}",
                    f"of={out}"], check=True, capture_output=True)
    try:
        return hashlib.sha256(out.read_bytes()).hexdigest()
    finally:
        out.unlink()


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"].get("conditions", []) if c["type"] == type_)


@pytest.fixture(scope="module")
def machine(platform: Platform) -> dict[str, Any]:
    platform.apply(vi_http("guest", platform.images.url("dvp-guest-cloud.qcow2")))
    platform.phase("vi", "guest", "Ready", timeout=120)
    platform.apply(vd_from_image("linux-vm-root", "guest"), vm("linux-vm", "linux-vm-root"))
    return platform.phase("vm", "linux-vm", "Running", timeout=180)


def test_snapshot_of_a_running_disk_without_agent_is_refused_as_dvp_documents(
        platform: Platform, machine: dict[str, Any]) -> None:
    apply_doc(platform, "vdsnapshot-linux-vm-root.yaml")
    snap = platform.phase("vds", SNAPSHOT, "Failed", timeout=30)
    ready = condition(snap, "VirtualDiskSnapshotReady")
    assert (ready["status"], ready["reason"]) == ("False", "PotentiallyInconsistent")
    assert "linux-vm" in ready["message"] and "agent is not ready" in ready["message"]
    assert condition(snap, "VirtualDiskReady")["status"] == "True"
    assert not platform.get(VOLUMES, f"vds-{snap['metadata']['uid']}"), "nothing was copied"
    table = k33(platform, "get", "vdsnapshot", SNAPSHOT)
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "CONSISTENT", "AGE"]
    assert table.split("\n")[1].split()[:2] == [SNAPSHOT, "Failed"]


def test_snapshot_of_the_stopped_vm_restores_the_old_content_and_boots(
        platform: Platform, machine: dict[str, Any]) -> None:
    platform.apply(vmop("stop-linux-vm", "linux-vm", "Stop"))
    platform.phase("vm", "linux-vm", "Stopped", timeout=90)
    gone(platform, "vds", SNAPSHOT)
    apply_doc(platform, "vdsnapshot-linux-vm-root.yaml")
    snap = platform.phase("vds", SNAPSHOT, "Ready", timeout=120)
    assert snap["status"]["consistent"] is True
    assert condition(snap, "VirtualDiskSnapshotReady")["reason"] == "VirtualDiskSnapshotReady"
    assert k33(platform, "get", "vds", SNAPSHOT, "--no-headers").split()[:3] == [SNAPSHOT, "Ready", "true"]

    original = platform.get(VOLUMES, "linux-vm-root")["status"]["path"]
    before = head_digest(original)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xbb 0 1M", original], check=True, capture_output=True)
    assert head_digest(original) != before, "the disk changed after the snapshot"

    gone(platform, "vm", "linux-vm")
    gone(platform, "vd", "linux-vm-root")
    apply_doc(platform, "vd-from-vdsnapshot.yaml")
    restored = platform.phase("vd", "linux-vm-root", "Ready", timeout=120)
    assert restored["status"]["capacity"] == "10Gi"
    assert condition(restored, "DatasourceReady")["status"] == "True"
    path = platform.get(VOLUMES, "linux-vm-root")["status"]["path"]
    assert path != original and head_digest(path) == before, "the restored disk has the content of snapshot time"

    platform.apply(vm("linux-vm", "linux-vm-root"))
    running = platform.phase("vm", "linux-vm", "Running", timeout=180)
    log = platform.serial_log(running)
    platform.wait("vm", "linux-vm", lambda _: parse_marker(read_log(log)) is not None, timeout=120,
                  what="the guest booted from the restored disk")


def test_images_from_the_snapshot_hold_its_content_and_a_running_disk_is_not_read(
        platform: Platform, machine: dict[str, Any], tmp_path: Path) -> None:
    snap = platform.phase("vds", SNAPSHOT, "Ready", timeout=30)
    want = head_digest(platform.get(VOLUMES, f"vds-{snap['metadata']['uid']}")["status"]["path"])
    from_snapshot = {"type": "ObjectRef", "objectRef": {"kind": "VirtualDiskSnapshot", "name": SNAPSHOT}}
    platform.apply({"apiVersion": API, "kind": "VirtualImage", "metadata": {"name": "from-snapshot"},
                    "spec": {"storage": "ContainerRegistry", "dataSource": from_snapshot}},
                   {"apiVersion": API, "kind": "ClusterVirtualImage", "metadata": {"name": "from-snapshot"},
                    "spec": {"dataSource": {"type": "ObjectRef", "objectRef": {
                        "kind": "VirtualDiskSnapshot", "name": SNAPSHOT, "namespace": "default"}}}})
    platform.phase("vi", "from-snapshot", "Ready", timeout=180)
    platform.phase("cvi", "from-snapshot", "Ready", timeout=180)
    connection = DvcrConnection.from_info(platform.server.dvcr_info, user="node")
    for repo in ("vi/default/from-snapshot", "cvi/from-snapshot"):  # what a node pulls for a disk from it
        pulled = asyncio.run(pull_disk(f"{repo}:latest", tmp_path / repo.replace("/", "-"), connection=connection,
                                       want_format="qcow2"))
        assert head_digest(str(pulled.path)) == want, f"{repo} holds what the snapshot holds"
    # the VM runs from linux-vm-root again: an image of that disk waits, saying why
    platform.phase("vm", "linux-vm", "Running", timeout=180)
    platform.apply({"apiVersion": API, "kind": "VirtualImage", "metadata": {"name": "from-running-disk"},
                    "spec": {"storage": "ContainerRegistry", "dataSource": {"type": "ObjectRef", "objectRef": {
                        "kind": "VirtualDisk", "name": "linux-vm-root"}}}})
    waiting = platform.wait("vi", "from-running-disk", lambda o: any(
        c["type"] == "DatasourceReady" and c.get("reason") == "VirtualDiskAttachedToRunningVM"
        for c in (o.get("status") or {}).get("conditions") or []), timeout=60, what="refused while the VM runs")
    assert waiting["status"]["phase"] == "Pending"
    assert "linux-vm" in condition(waiting, "DatasourceReady")["message"]
    for kind in ("vi/from-snapshot", "vi/from-running-disk", "cvi/from-snapshot"):
        k33(platform, "delete", kind, "--wait=false")


def test_vm_snapshot_of_the_guide_keeps_the_vm_and_its_disks(platform: Platform, machine: dict[str, Any]) -> None:
    platform.phase("vm", "linux-vm", "Running", timeout=180)  # booted from the restored disk above
    # that disk is an overlay on the disk snapshot's file: deleting the snapshot pulls its data into the running
    # VM's disk (live), then the snapshot's file goes
    snap_volume = f"vds-{platform.get('vds', SNAPSHOT)['metadata']['uid']}"
    disk_path = platform.get(VOLUMES, "linux-vm-root")["status"]["path"]
    snap_path = platform.get(VOLUMES, snap_volume)["status"]["path"]
    assert backing_of(disk_path) == snap_path
    started = platform.get("vm", "linux-vm")["status"]["stats"]["phasesTransitions"][-1]
    k33(platform, "delete", "vds", SNAPSHOT, "--wait=false")
    deadline = time.monotonic() + 180
    while platform.get(VOLUMES, snap_volume):
        assert time.monotonic() < deadline, f"{snap_volume} not deleted in 180s while its VM ran"
        time.sleep(0.3)
    assert not Path(snap_path).exists()
    assert backing_of(disk_path) != snap_path, "the running disk no longer reads the deleted file"
    running = platform.phase("vm", "linux-vm", "Running", timeout=10)
    assert running["status"]["stats"]["phasesTransitions"][-1] == started, "the VM ran on through the pull"
    apply_doc(platform, "vmsnapshot-linux-vm.yaml")
    refused = platform.phase("vms", "linux-vm-snapshot", "Failed", timeout=30)
    ready = condition(refused, "VirtualMachineSnapshotReady")
    assert ready["reason"] == "PotentiallyInconsistent" and "agent is not ready" in ready["message"]

    platform.apply(vmop("stop-linux-vm-again", "linux-vm", "Stop"))
    platform.phase("vm", "linux-vm", "Stopped", timeout=90)
    gone(platform, "vms", "linux-vm-snapshot")
    apply_doc(platform, "vmsnapshot-linux-vm.yaml")
    snap = platform.phase("vms", "linux-vm-snapshot", "Ready", timeout=120)
    status = snap["status"]
    assert status["consistent"] is True
    assert condition(snap, "VirtualMachineReady")["status"] == "True"
    assert [(r["kind"], r["name"]) for r in status["resources"]] == [
        ("VirtualMachine", "linux-vm"), ("VirtualDisk", "linux-vm-root")], "keepIPAddress: Never keeps no address"
    assert status["virtualDiskSnapshotNames"] == [f"linux-vm-root-{snap['metadata']['uid']}"]
    disk_snap = platform.get("vds", status["virtualDiskSnapshotNames"][0])
    assert disk_snap["status"]["phase"] == "Ready" and disk_snap["metadata"]["ownerReferences"][0]["name"] == \
        "linux-vm-snapshot"
    secret = platform.get("secret", status["virtualMachineSnapshotSecretName"])
    assert secret["type"] == "virtualmachine.virtualization.deckhouse.io/snapshot"
    assert set(secret["data"]) == {"vm", "vds"}
    assert k33(platform, "get", "vmsnapshot", "linux-vm-snapshot", "--no-headers").split()[:3] == [
        "linux-vm-snapshot", "Ready", "true"]


def restore_op(name: str, mode: str) -> dict[str, Any]:
    """The guide's Restore operation ("Restore a virtual machine"), its placeholders filled in."""
    return {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineOperation",
            "metadata": {"name": name},
            "spec": {"type": "Restore", "virtualMachineName": "linux-vm",
                     "restore": {"mode": mode, "virtualMachineSnapshotName": "linux-vm-snapshot"}}}


def test_restore_from_the_vm_snapshot_brings_the_disk_back(platform: Platform, machine: dict[str, Any]) -> None:
    platform.phase("vms", "linux-vm-snapshot", "Ready", timeout=5)
    path = platform.get(VOLUMES, "linux-vm-root")["status"]["path"]
    before = head_digest(path)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xcc 0 1M", path], check=True, capture_output=True)
    changed = head_digest(path)
    assert changed != before

    platform.apply(restore_op("restore-dry", "DryRun"))
    dry = platform.phase("vmop", "restore-dry", "Completed", timeout=60)
    assert [(r["kind"], r["name"], r["status"]) for r in dry["status"]["resources"]] == [
        ("VirtualMachine", "linux-vm", "Completed"), ("VirtualDisk", "linux-vm-root", "Completed")]
    assert platform.get(VOLUMES, "linux-vm-root")["status"]["path"] == path and head_digest(path) == changed, \
        "a dry run changes nothing"

    disk_uid = platform.get("vd", "linux-vm-root")["metadata"]["uid"]
    platform.apply(restore_op("restore-strict", "Strict"))
    done = platform.phase("vmop", "restore-strict", "Completed", timeout=240)
    assert all(r["status"] == "Completed" for r in done["status"]["resources"])
    # the disk is the one the snapshot kept: put back in place, its volume reverted to the snapshot's
    restored = platform.phase("vd", "linux-vm-root", "Ready", timeout=30)
    assert restored["metadata"]["uid"] == disk_uid
    volume = platform.get(VOLUMES, "linux-vm-root")
    assert volume["status"]["reverted"] == done["metadata"]["uid"] and volume["status"]["path"] == path
    assert head_digest(path) == before, "the restored disk has the content of snapshot time"
    assert platform.get("vm", "linux-vm")["status"]["phase"] == "Stopped", "it was stopped: it stays stopped"

    # a disk that differs from the kept one (here its labels) is made again from its snapshot, as DVP does
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xcc 0 1M", path], check=True, capture_output=True)
    k33(platform, "label", "vd", "linux-vm-root", "relabelled=yes")
    platform.apply(restore_op("restore-again", "Strict"))
    platform.phase("vmop", "restore-again", "Completed", timeout=240)
    restored = platform.phase("vd", "linux-vm-root", "Ready", timeout=30)
    assert restored["metadata"]["uid"] != disk_uid and "relabelled" not in (restored["metadata"].get("labels") or {})
    assert restored["spec"]["dataSource"]["objectRef"]["kind"] == "VirtualDiskSnapshot"
    new_path = platform.get(VOLUMES, "linux-vm-root")["status"]["path"]
    assert new_path != path and head_digest(new_path) == before, "the disk made again has the snapshot's content"
    assert platform.get("vm", "linux-vm")["status"]["phase"] == "Stopped"

    boots = markers(platform)
    platform.apply(vmop("start-restored", "linux-vm", "Start"))
    platform.phase("vm", "linux-vm", "Running", timeout=180)
    platform.wait("vm", "linux-vm", lambda _: markers(platform) > boots, timeout=120,
                  what="the restored machine booted again")


def markers(platform: Platform) -> int:
    """Boot markers in the machine's serial log so far (0 without an instance)."""
    vm = platform.get("vm", "linux-vm")
    try:
        return len(MARKER.findall(read_log(platform.serial_log(vm))))
    except (KeyError, TypeError):
        return 0


def test_clone_runs_next_to_its_source_with_a_new_name_mac_and_ip(platform: Platform, machine: dict[str, Any]) -> None:
    platform.phase("vm", "linux-vm", "Running", timeout=60)
    platform.apply(vmop("stop-for-clone", "linux-vm", "Stop"))
    platform.phase("vm", "linux-vm", "Stopped", timeout=90)
    # the guide's clone "with using a prefix for all resources", its VM name filled in
    platform.apply({"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineOperation",
                    "metadata": {"name": "clone-linux-vm"},
                    "spec": {"type": "Clone", "virtualMachineName": "linux-vm",
                             "clone": {"mode": "Strict", "customization": {"namePrefix": "clone-",
                                                                           "nameSuffix": "-prod"}}}})
    op = platform.phase("vmop", "clone-linux-vm", "Completed", timeout=240)
    assert [(r["kind"], r["name"]) for r in op["status"]["resources"]] == [
        ("VirtualMachine", "clone-linux-vm-prod"), ("VirtualDisk", "clone-linux-vm-root-prod")]
    temporary = f"vmop-{op['metadata']['uid']}"  # deleted by the cycle after Completed
    deadline = time.monotonic() + 30
    while platform.get("vms", temporary) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not platform.get("vms", temporary), "the temporary snapshot is gone"
    source_disk = platform.get(VOLUMES, "linux-vm-root")["status"]["path"]
    clone_disk = platform.phase("vd", "clone-linux-vm-root-prod", "Ready", timeout=60)
    assert head_digest(platform.get(VOLUMES, clone_disk["metadata"]["name"])["status"]["path"]) == \
        head_digest(source_disk), "the clone's disk has the source's content"

    platform.apply(vmop("start-after-clone", "linux-vm", "Start"))
    source = platform.phase("vm", "linux-vm", "Running", timeout=180)
    clone = platform.phase("vm", "clone-linux-vm-prod", "Running", timeout=180)
    assert clone["status"]["ipAddress"] and clone["status"]["ipAddress"] != source["status"]["ipAddress"]
    macs = {platform.get("vmmac", n).get("status", {}).get("address") for n in ("linux-vm", "clone-linux-vm-prod")}
    assert len(macs) == 2 and None not in macs, macs
    assert "labels" not in clone["metadata"] or not clone["metadata"]["labels"]


def test_snapshot_operation_of_the_guide_creates_a_machine(platform: Platform, machine: dict[str, Any]) -> None:
    def op(name: str, mode: str) -> dict[str, Any]:
        # the guide's "Example with renaming specific resources", its names filled in
        return {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineSnapshotOperation",
                "metadata": {"name": name},
                "spec": {"type": "CreateVirtualMachine", "virtualMachineSnapshotName": "linux-vm-snapshot",
                         "createVirtualMachine": {"mode": mode, "nameReplacement": [
                             {"from": {"kind": "VirtualMachine", "name": "linux-vm"}, "to": "vm-copy"},
                             {"from": {"kind": "VirtualDisk", "name": "linux-vm-root"}, "to": "vm-copy-root"}]}}}
    platform.apply(op("copy-dry", "DryRun"))
    dry = platform.phase("vmsop", "copy-dry", "Completed", timeout=60)
    assert [(r["kind"], r["name"]) for r in dry["status"]["resources"]] == [
        ("VirtualMachine", "vm-copy"), ("VirtualDisk", "vm-copy-root")]
    assert not platform.get("vm", "vm-copy"), "a dry run creates nothing"
    platform.apply(op("copy", "Strict"))
    platform.phase("vmsop", "copy", "Completed", timeout=180)
    disk = platform.phase("vd", "vm-copy-root", "Ready", timeout=30)
    assert disk["spec"]["dataSource"]["objectRef"]["kind"] == "VirtualDiskSnapshot"
    assert platform.get("vm", "vm-copy")["spec"]["blockDeviceRefs"][0]["name"] == "vm-copy-root"
    table = k33(platform, "get", "vmsop", "copy", "--no-headers").split()
    assert table[:4] == ["copy", "Completed", "CreateVirtualMachine", "linux-vm-snapshot"]
    k33(platform, "delete", "vm", "vm-copy", "--wait=false")
