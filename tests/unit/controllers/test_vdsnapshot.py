"""VirtualDiskSnapshot: the phases and conditions DVP documents (disk missing or not ready, a
running VM without an agent under requiredConsistency, freezing, the copy requested on the disk's
node and followed to Ready/Failed, a lost copy), the volume contract it writes, and a VirtualDisk
made from a Ready snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_DISK_SNAPSHOTS, VIRTUAL_DISKS, VIRTUAL_MACHINES, VOLUMES
from controlplane.api.snapshots import SnapshotPhase as Phase
from controlplane.api.snapshots import VDSCondition as C
from controlplane.api.snapshots import snapshot_volume_name
from controlplane.api.volume import VolumeSpec, parse_volume
from controlplane.controllers.disk import sources
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.snapshot import vdsnapshot
from tests.unit.controllers.snapshot_support import Store, context

NS = "default"
R = C.VirtualDiskSnapshotReadyReason


def _ctx(store: Store) -> Context:
    return context(store, VIRTUAL_DISKS, VIRTUAL_MACHINES, VOLUMES, VIRTUAL_DISK_SNAPSHOTS)


def disk(store: Store, phase: str = "Ready") -> None:
    store.put(VIRTUAL_DISKS, {"metadata": {"name": "data", "namespace": NS},
                              "status": {"phase": phase, "target": {"persistentVolumeClaimName": "data"}}})
    store.put(VOLUMES, {"metadata": {"name": "data", "namespace": NS, "uid": "v1"},
                        "spec": {"nodeName": "n1", "size": str(2**30)},
                        "status": {"phase": "Ready", "capacityBytes": 2**30}})


def vm(store: Store, phase: str, agent: bool) -> None:
    status: dict[str, Any] = {"phase": phase}
    conditions.set_condition(status, "AgentReady", agent, "AgentReady" if agent else "AgentNotReady")
    store.put(VIRTUAL_MACHINES, {"metadata": {"name": "vm1", "namespace": NS},
                                 "spec": {"blockDeviceRefs": [{"kind": "VirtualDisk", "name": "data"}]},
                                 "status": status})


def reconcile(ctx: Context, *, required: bool = True, status: dict[str, Any] | None = None) -> State:
    obj = {"apiVersion": VIRTUAL_DISK_SNAPSHOTS.api_version, "kind": VIRTUAL_DISK_SNAPSHOTS.kind,
           "metadata": {"name": "snap", "namespace": NS, "generation": 1, "uid": "u1", "resourceVersion": "1"},
           "spec": {"virtualDiskName": "data", "requiredConsistency": required}, "status": status or {}}
    state = State(ctx, VIRTUAL_DISK_SNAPSHOTS, obj)
    for handler in (vdsnapshot.InitHandler(), vdsnapshot.DiskHandler(), vdsnapshot.SnapshotHandler()):
        handler.handle(state)
        if state.stop:
            break
    return state


def ready_condition(state: State) -> dict[str, Any]:
    return conditions.get(state.status, C.Type.VIRTUAL_DISK_SNAPSHOT_READY) or {}


@pytest.mark.parametrize(("disk_phase", "vm_phase", "agent", "required", "phase", "reason", "copy_requested"), [
    (None, None, False, True, Phase.FAILED, R.WAITING_FOR_THE_VIRTUAL_DISK, False),
    ("Provisioning", None, False, True, Phase.FAILED, R.WAITING_FOR_THE_VIRTUAL_DISK, False),
    ("Ready", None, False, True, Phase.IN_PROGRESS, R.SNAPSHOTTING, True),
    ("Ready", "Stopped", False, True, Phase.IN_PROGRESS, R.SNAPSHOTTING, True),
    ("Ready", "Running", False, True, Phase.FAILED, R.POTENTIALLY_INCONSISTENT, False),
    ("Ready", "Running", False, False, Phase.IN_PROGRESS, R.SNAPSHOTTING, True),
    ("Ready", "Running", True, True, Phase.IN_PROGRESS, R.FILE_SYSTEM_FREEZING, True),
], ids=["no-disk", "disk-not-ready", "unused-disk", "stopped-vm", "running-no-agent-required",
        "running-no-agent-best-effort", "running-with-agent"])
def test_first_cycle(disk_phase: str | None, vm_phase: str | None, agent: bool, required: bool, phase: Phase,
                     reason: str, copy_requested: bool) -> None:
    store = Store()
    if disk_phase:
        disk(store, disk_phase)
    if vm_phase:
        vm(store, vm_phase, agent)
    state = reconcile(_ctx(store), required=required)
    assert state.status["phase"] == phase
    cond = ready_condition(state)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    volume = store.objects.get((VOLUMES.plural, NS, snapshot_volume_name("u1")))
    assert (volume is not None) is copy_requested
    if volume is not None:
        spec = parse_volume(volume)
        assert (spec.node_name, spec.size_bytes, spec.source_volume, spec.require_consistency) == \
            ("n1", 2**30, "data", required)
        assert volume["metadata"]["ownerReferences"][0]["kind"] == "VirtualDiskSnapshot"
    if reason == R.POTENTIALLY_INCONSISTENT:
        assert "agent is not ready" in cond["message"] and "vm1" in cond["message"]


@pytest.mark.parametrize(("vstatus", "phase", "reason", "consistent"), [
    ({"phase": "Provisioning"}, Phase.IN_PROGRESS, R.SNAPSHOTTING, None),
    ({"phase": "Ready", "consistent": True}, Phase.READY, R.VIRTUAL_DISK_SNAPSHOT_READY, True),
    ({"phase": "Ready", "consistent": False}, Phase.READY, R.VIRTUAL_DISK_SNAPSHOT_READY, False),
    ({"phase": "Failed", "message": "the guest's filesystems could not be frozen",
      "conditions": [{"type": "Ready", "status": "False", "reason": "PotentiallyInconsistent"}]},
     Phase.FAILED, R.POTENTIALLY_INCONSISTENT, None),
    ({"phase": "Failed", "message": "disk full", "conditions": [{"type": "Ready", "status": "False",
                                                                 "reason": "ProvisioningFailed"}]},
     Phase.FAILED, R.VIRTUAL_DISK_SNAPSHOT_FAILED, None),
], ids=["copying", "ready-consistent", "ready-inconsistent", "freeze-refused", "copy-failed"])
def test_following_the_copy(vstatus: dict[str, Any], phase: Phase, reason: str, consistent: bool | None) -> None:
    store = Store()
    disk(store)
    store.put(VOLUMES, {"metadata": {"name": snapshot_volume_name("u1"), "namespace": NS},
                        "spec": {"nodeName": "n1", "size": str(2**30)}, "status": vstatus})
    state = reconcile(_ctx(store), status={"phase": "InProgress"})
    assert state.status["phase"] == phase and ready_condition(state)["reason"] == reason
    assert state.status.get("consistent") == consistent
    if phase is Phase.READY:
        assert ready_condition(state)["status"] == "True"
        assert state.status["volumeSnapshotName"] == snapshot_volume_name("u1")


def test_the_volumes_first_event_needs_no_status_write() -> None:
    """The cycle that requests the copy writes what the next one (woken by the volume's creation,
    no status yet) would: one status write, not two."""
    store = Store()
    disk(store)
    first = reconcile(_ctx(store))
    assert first.status["volumeSnapshotName"] == snapshot_volume_name("u1")
    woken = reconcile(_ctx(store), status=first.status)
    assert woken.status == first.status


def test_a_ready_snapshot_whose_copy_is_gone_is_lost() -> None:
    store = Store()
    disk(store)
    state = reconcile(_ctx(store), status={"phase": "Ready", "consistent": True})
    assert state.status["phase"] == Phase.FAILED and ready_condition(state)["reason"] == R.LOST


def test_volume_spec_round_trips_a_volume_source() -> None:
    spec = VolumeSpec(node_name="n1", size_bytes=5, source_volume="data", require_consistency=True)
    api = spec.to_api()
    assert api["source"] == {"volume": {"name": "data", "requireConsistency": True}}
    assert parse_volume({"spec": api}) == spec


def test_disk_from_a_ready_snapshot_is_a_copy_of_its_volume_on_its_node() -> None:
    store = Store()
    ctx = _ctx(store)
    obj = {"metadata": {"name": "restored", "namespace": NS, "uid": "d2", "resourceVersion": "1"},
           "spec": {"dataSource": {"type": "ObjectRef", "objectRef": {"kind": "VirtualDiskSnapshot", "name": "snap"}}}}
    resolver = sources.DiskSources(importer=None, api=None)  # type: ignore[arg-type]
    pending = resolver.resolve(State(ctx, VIRTUAL_DISKS, obj))
    assert "does not exist" in pending.problem and not pending.failed
    store.put(VIRTUAL_DISK_SNAPSHOTS, {"metadata": {"name": "snap", "namespace": NS},
                                       "status": {"phase": "Ready", "volumeSnapshotName": "vds-u1"}})
    store.put(VOLUMES, {"metadata": {"name": "vds-u1", "namespace": NS}, "spec": {"nodeName": "n1", "size": "5"},
                        "status": {"phase": "Ready", "capacityBytes": 2**30}})
    src = resolver.resolve(State(ctx, VIRTUAL_DISKS, obj))
    assert (src.problem, src.size, src.source_volume, src.node) == ("", 2**30, "vds-u1", "n1")


def test_a_disk_made_from_a_snapshot_stays_when_the_snapshot_goes() -> None:
    store = Store()
    ctx = _ctx(store)
    obj = {"metadata": {"name": "restored", "namespace": NS, "uid": "d2", "resourceVersion": "1"},
           "spec": {"dataSource": {"type": "ObjectRef", "objectRef": {"kind": "VirtualDiskSnapshot", "name": "gone"}}}}
    store.put(VOLUMES, {"metadata": {"name": "restored", "namespace": NS}, "spec": {"nodeName": "n1", "size": "5"},
                        "status": {"phase": "Ready", "capacityBytes": 2**30}})
    src = sources.DiskSources(importer=None, api=None).resolve(State(ctx, VIRTUAL_DISKS, obj))  # type: ignore[arg-type]
    assert (src.problem, src.size, src.node) == ("", 2**30, "n1")
