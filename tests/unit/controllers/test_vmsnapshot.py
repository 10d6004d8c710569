"""VirtualMachineSnapshot: DVP's refusals (no VM, VM not ready, disks not ready, a running VM
without agent under requiredConsistency), what it keeps (the Secret with the VM, its address as
`keepIPAddress` says, and `status.resources`), one VirtualDiskSnapshot per disk, and the phases
those drive (InProgress, Ready with `consistent`, Failed, lost)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_DISKS,
    VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS,
    VIRTUAL_MACHINE_IP_ADDRESSES,
    VIRTUAL_MACHINE_MAC_ADDRESSES,
    VIRTUAL_MACHINE_SNAPSHOTS,
    VIRTUAL_MACHINES,
)
from controlplane.api.snapshots import SnapshotPhase as Phase
from controlplane.api.snapshots import VMSCondition as C
from controlplane.common.kube.client import SECRETS
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.snapshot import kept, vmsnapshot
from tests.unit.controllers.snapshot_support import Store, context

NS = "default"
R = C.VirtualMachineSnapshotReadyReason
UID = "s1"


def _ctx(store: Store) -> Context:
    return context(store, VIRTUAL_MACHINES, VIRTUAL_DISKS, VIRTUAL_DISK_SNAPSHOTS, VIRTUAL_MACHINE_IP_ADDRESSES,
                   VIRTUAL_MACHINE_MAC_ADDRESSES, VIRTUAL_MACHINE_BLOCK_DEVICE_ATTACHMENTS, SECRETS)


def world(store: Store, *, vm_phase: str = "Stopped", agent: bool = False, disk_phase: str = "Ready",
          ip_type: str = "Auto") -> None:
    status: dict[str, Any] = {"phase": vm_phase, "virtualMachineIPAddressName": "linux-vm",
                              "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "linux-vm-root"}]}
    conditions.set_condition(status, "AgentReady", agent, "AgentReady" if agent else "AgentNotReady")
    store.put(VIRTUAL_MACHINES, {"apiVersion": VIRTUAL_MACHINES.api_version, "kind": "VirtualMachine",
                                 "metadata": {"name": "linux-vm", "namespace": NS, "uid": "vm-uid",
                                              "resourceVersion": "7", "labels": {"app": "x"}},
                                 "spec": {"blockDeviceRefs": [{"kind": "VirtualDisk", "name": "linux-vm-root"}]},
                                 "status": status})
    store.put(VIRTUAL_DISKS, {"apiVersion": VIRTUAL_DISKS.api_version, "kind": "VirtualDisk",
                              "metadata": {"name": "linux-vm-root", "namespace": NS},
                              "spec": {"persistentVolumeClaim": {"size": "1Gi"}}, "status": {"phase": disk_phase}})
    spec = {"type": ip_type, **({"staticIP": "10.66.0.9"} if ip_type == "Static" else {})}
    store.put(VIRTUAL_MACHINE_IP_ADDRESSES, {"apiVersion": VIRTUAL_MACHINE_IP_ADDRESSES.api_version,
                                             "kind": "VirtualMachineIPAddress",
                                             "metadata": {"name": "linux-vm", "namespace": NS},
                                             "spec": spec, "status": {"address": "10.66.0.9"}})


def reconcile(ctx: Context, *, keep: str = "Always", required: bool = True,
              status: dict[str, Any] | None = None) -> State:
    obj = {"apiVersion": VIRTUAL_MACHINE_SNAPSHOTS.api_version, "kind": VIRTUAL_MACHINE_SNAPSHOTS.kind,
           "metadata": {"name": "linux-vm-snapshot", "namespace": NS, "generation": 1, "uid": UID,
                        "resourceVersion": "1"},
           "spec": {"virtualMachineName": "linux-vm", "keepIPAddress": keep, "requiredConsistency": required},
           "status": status or {}}
    state = State(ctx, VIRTUAL_MACHINE_SNAPSHOTS, obj)
    for handler in (vmsnapshot.InitHandler(), vmsnapshot.LifecycleHandler()):
        handler.handle(state)
        if state.stop:
            break
    return state


def ready(state: State) -> dict[str, Any]:
    return conditions.get(state.status, C.Type.VIRTUAL_MACHINE_SNAPSHOT_READY) or {}


@pytest.mark.parametrize(("setup", "required", "reason"), [
    (None, True, R.WAITING_FOR_THE_VIRTUAL_MACHINE),
    ({"vm_phase": "Starting"}, True, R.WAITING_FOR_THE_VIRTUAL_MACHINE),
    ({"disk_phase": "Resizing"}, True, R.BLOCK_DEVICES_NOT_READY),
    ({"vm_phase": "Running"}, True, R.POTENTIALLY_INCONSISTENT),
], ids=["no-vm", "vm-starting", "disk-resizing", "running-no-agent"])
def test_refusals(setup: dict[str, Any] | None, required: bool, reason: str) -> None:
    store = Store()
    if setup is not None:
        world(store, **setup)
    state = reconcile(_ctx(store), required=required)
    assert state.status["phase"] == Phase.FAILED
    assert (ready(state)["status"], ready(state)["reason"]) == ("False", reason)
    assert not [k for k in store.objects if k[0] in ("secrets", VIRTUAL_DISK_SNAPSHOTS.plural)]


def test_running_vm_without_agent_is_snapshotted_when_consistency_is_not_required() -> None:
    store = Store()
    world(store, vm_phase="Running")
    state = reconcile(_ctx(store), required=False)
    assert state.status["phase"] == Phase.IN_PROGRESS
    vds = store.find(VIRTUAL_DISK_SNAPSHOTS, f"linux-vm-root-{UID}")
    assert vds is not None and vds["spec"] == {"virtualDiskName": "linux-vm-root", "requiredConsistency": False}


@pytest.mark.parametrize(("keep", "ip_type", "kept_ip"), [
    ("Always", "Auto", {"type": "Static", "staticIP": "10.66.0.9"}),
    ("Always", "Static", {"type": "Static", "staticIP": "10.66.0.9"}),
    ("Never", "Auto", None),
    ("Never", "Static", {"type": "Static", "staticIP": "10.66.0.9"}),
], ids=["always-auto-converted", "always-static", "never-auto-left-out", "never-static-kept"])
def test_what_is_kept(keep: str, ip_type: str, kept_ip: dict[str, Any] | None) -> None:
    store = Store()
    world(store, ip_type=ip_type)
    state = reconcile(_ctx(store), keep=keep)
    assert state.status["phase"] == Phase.IN_PROGRESS and ready(state)["reason"] == R.SNAPSHOTTING
    assert "(0/1)" in ready(state)["message"]
    name = kept.secret_name("linux-vm-snapshot", UID)
    assert state.status["virtualMachineSnapshotSecretName"] == name
    secret = store.find(SECRETS, name)
    assert secret is not None and secret["type"] == kept.SECRET_TYPE
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachineSnapshot"
    data = kept.read_kept(secret)
    assert data["vm"]["metadata"] == {"name": "linux-vm", "namespace": NS, "labels": {"app": "x"}}
    assert (data.get("vmip") or {}).get("spec") == kept_ip
    kinds = [r["kind"] for r in state.status["resources"]]
    assert kinds == ["VirtualMachine", *(["VirtualMachineIPAddress"] if keep == "Always" else []), "VirtualDisk"]
    assert state.status["virtualDiskSnapshotNames"] == [f"linux-vm-root-{UID}"]
    vds = store.find(VIRTUAL_DISK_SNAPSHOTS, f"linux-vm-root-{UID}")
    assert vds is not None and vds["metadata"]["ownerReferences"][0]["uid"] == UID


@pytest.mark.parametrize(("vds_status", "phase", "reason", "consistent"), [
    ({"phase": "InProgress"}, Phase.IN_PROGRESS, R.SNAPSHOTTING, None),
    ({"phase": "Ready", "consistent": True}, Phase.READY, R.VIRTUAL_MACHINE_SNAPSHOT_READY, True),
    ({"phase": "Ready", "consistent": False}, Phase.READY, R.VIRTUAL_MACHINE_SNAPSHOT_READY, False),
    ({"phase": "Failed", "conditions": [{"type": "VirtualDiskSnapshotReady", "status": "False",
                                         "reason": "VirtualDiskSnapshotFailed", "message": "disk full"}]},
     Phase.FAILED, R.VIRTUAL_MACHINE_SNAPSHOT_FAILED, None),
], ids=["waiting", "ready-consistent", "ready-inconsistent", "disk-snapshot-failed"])
def test_disk_snapshots_drive_the_phase(vds_status: dict[str, Any], phase: Phase, reason: str,
                                        consistent: bool | None) -> None:
    store = Store()
    world(store)
    ctx = _ctx(store)
    first = reconcile(ctx)
    store.find(VIRTUAL_DISK_SNAPSHOTS, f"linux-vm-root-{UID}")["status"] = vds_status  # type: ignore[index]
    state = reconcile(ctx, status=first.status)
    assert state.status["phase"] == phase and ready(state)["reason"] == reason
    assert state.status.get("consistent") == consistent
    if phase is Phase.FAILED:
        assert "disk full" in ready(state)["message"]


def test_a_ready_snapshot_whose_disk_snapshot_is_gone_is_lost() -> None:
    store = Store()
    world(store)
    state = reconcile(_ctx(store), status={"phase": "Ready", "virtualDiskSnapshotNames": [f"linux-vm-root-{UID}"]})
    assert state.status["phase"] == Phase.FAILED and ready(state)["reason"] == R.VIRTUAL_DISK_SNAPSHOT_LOST
