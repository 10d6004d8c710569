"""VMOP Restore: DryRun reports and changes nothing, a disk another machine uses is a conflict,
Strict and BestEffort (a missing image dropped) walk stop -> disks made again from their
snapshots -> spec replaced -> start again, cycle by cycle, to Completed; a disk that is still the
one the snapshot kept is put back in place instead (its volume asked to revert), and any
difference (labels, spec, the node of its volume) sends it the way of a disk made again."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import pytest

from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINE_IP_ADDRESSES,
    VIRTUAL_MACHINE_OPERATIONS,
    VIRTUAL_MACHINE_SNAPSHOTS,
    VIRTUAL_MACHINES,
    VOLUMES,
)
from controlplane.common.kube.client import SECRETS
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vm import requests
from controlplane.controllers.vmop import restore
from tests.unit.controllers.snapshot_support import Store, context

NS = "default"
REFS = [{"kind": "VirtualDisk", "name": "root"}, {"kind": "VirtualImage", "name": "iso"}]
KEPT_SPEC: dict[str, Any] = {"runPolicy": "AlwaysOnUnlessStoppedManually", "memory": {"size": "1Gi"},
                             "blockDeviceRefs": REFS}


class Recorder:
    def record(self, *_: Any, **__: Any) -> None:
        return None


def _ctx(store: Store) -> Context:
    ctx = context(store, VIRTUAL_MACHINES, VIRTUAL_DISKS, VIRTUAL_MACHINE_SNAPSHOTS, SECRETS, VIRTUAL_IMAGES,
                  CLUSTER_VIRTUAL_IMAGES, VIRTUAL_MACHINE_IP_ADDRESSES, VIRTUAL_DISK_SNAPSHOTS, VOLUMES)
    ctx.recorder = Recorder()  # type: ignore[assignment]
    return ctx


def world(store: Store, *, vm_phase: str = "Stopped", other_user: bool = False) -> None:
    kept = {"vm": {"metadata": {"name": "linux-vm"}, "spec": KEPT_SPEC},
            "vds": [{"metadata": {"name": "root", "labels": {"l": "1"}},
                     "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}]}
    store.put(SECRETS, {"metadata": {"name": "d8v-vms-snap-u9", "namespace": NS},
                        "data": {k: base64.b64encode(json.dumps(v).encode()).decode() for k, v in kept.items()}})
    store.put(VIRTUAL_MACHINE_SNAPSHOTS, {"metadata": {"name": "snap", "namespace": NS, "uid": "u9"},
                                          "status": {"phase": "Ready", "virtualMachineSnapshotSecretName":
                                                     "d8v-vms-snap-u9", "virtualDiskSnapshotNames": ["root-u9"]}})
    store.put(VIRTUAL_MACHINES, {"apiVersion": VIRTUAL_MACHINES.api_version, "kind": "VirtualMachine",
                                 "metadata": {"name": "linux-vm", "namespace": NS},
                                 "spec": {"memory": {"size": "2Gi"},
                                          "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"}]},
                                 "status": {"phase": vm_phase}})
    store.put(VIRTUAL_DISKS, {"metadata": {"name": "root", "namespace": NS}, "status": {"phase": "Ready"}})
    if other_user:
        store.put(VIRTUAL_MACHINES, {"metadata": {"name": "other", "namespace": NS},
                                     "spec": {"blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"}]}})


def reconcile(ctx: Context, mode: str, status: dict[str, Any] | None = None) -> State:
    obj = {"apiVersion": VIRTUAL_MACHINE_OPERATIONS.api_version, "kind": VIRTUAL_MACHINE_OPERATIONS.kind,
           "metadata": {"name": "restore-vm", "namespace": NS, "uid": "op1", "generation": 1, "resourceVersion": "1",
                        "annotations": {}},
           "spec": {"type": "Restore", "virtualMachineName": "linux-vm",
                    "restore": {"mode": mode, "virtualMachineSnapshotName": "snap"}},
           "status": status or {"phase": "Pending"}}
    state = State(ctx, VIRTUAL_MACHINE_OPERATIONS, obj)
    restore.RestoreHandler().handle(state)
    return state


def completed(state: State) -> dict[str, Any]:
    return next(c for c in state.status["conditions"] if c["type"] == "Completed")


def test_dry_run_reports_and_changes_nothing() -> None:
    store = Store()
    world(store)
    before = json.dumps(sorted((str(k), v) for k, v in store.objects.items()), sort_keys=True)
    state = reconcile(_ctx(store), "DryRun")
    assert state.status["phase"] == "Completed" and completed(state)["status"] == "True"
    assert [(r["kind"], r["name"], r["status"]) for r in state.status["resources"]] == [
        ("VirtualMachine", "linux-vm", "Completed"), ("VirtualDisk", "root", "Completed"),
        ("VirtualImage", "iso", "Failed")]
    assert "root-u9" in state.status["resources"][1]["message"]
    assert json.dumps(sorted((str(k), v) for k, v in store.objects.items()), sort_keys=True) == before and not store.deleted


@pytest.mark.parametrize("mode", ["DryRun", "Strict", "BestEffort"])
def test_a_disk_another_machine_uses_is_a_conflict(mode: str) -> None:
    store = Store()
    world(store, other_user=True)
    state = reconcile(_ctx(store), mode)
    assert state.status["phase"] == "Failed"
    assert any(r["status"] == "Failed" and "'other'" in r["message"] for r in state.status["resources"])
    assert not store.deleted


def test_missing_snapshot_fails_naming_the_field() -> None:
    store = Store()
    world(store)
    del store.objects[(VIRTUAL_MACHINE_SNAPSHOTS.plural, NS, "snap")]
    state = reconcile(_ctx(store), "Strict")
    assert state.status["phase"] == "Failed" and "spec.restore.virtualMachineSnapshotName" in completed(state)["message"]


@pytest.mark.parametrize(("mode", "refs"), [
    ("Strict", REFS),
    ("BestEffort", REFS[:1]),
], ids=["strict-keeps-the-missing-image", "best-effort-drops-it"])
def test_restore_of_a_running_machine_cycle_by_cycle(mode: str, refs: list[dict[str, str]]) -> None:
    store = Store()
    world(store, vm_phase="Running")
    ctx = _ctx(store)
    state = reconcile(ctx, mode)
    assert state.status["phase"] == "InProgress"
    assert state.meta["annotations"] == {}, "the operation keeps no mark: its metadata is not written"
    vm = store.find(VIRTUAL_MACHINES, "linux-vm")
    assert vm is not None and (requests.read(vm) or {}).get("action") == "Stop"
    assert not store.deleted, "nothing is touched while the machine runs"

    vm["status"]["phase"] = "Stopped"
    state = reconcile(ctx, mode, state.status)  # disk deleted, spec replaced
    assert (VIRTUAL_DISKS.plural, "root") in store.deleted
    vm = store.find(VIRTUAL_MACHINES, "linux-vm")
    assert vm is not None and vm["spec"]["blockDeviceRefs"] == refs and vm["spec"]["memory"] == {"size": "1Gi"}
    assert vm["metadata"]["annotations"][restore.RESTORED_BY] == "op1"

    state = reconcile(ctx, mode, state.status)  # disk made again from its snapshot
    disk = store.find(VIRTUAL_DISKS, "root")
    assert disk is not None and disk["spec"]["dataSource"]["objectRef"] == {"kind": "VirtualDiskSnapshot",
                                                                            "name": "root-u9"}
    assert disk["spec"]["persistentVolumeClaim"] == {"size": "1Gi"} and disk["metadata"]["labels"] == {"l": "1"}
    assert state.status["phase"] == "InProgress"

    disk["status"] = {"phase": "Ready"}
    state = reconcile(ctx, mode, state.status)  # started again: it ran before
    assert (requests.read(store.find(VIRTUAL_MACHINES, "linux-vm") or {}) or {}).get("action") == "Start"
    assert state.status["phase"] == "InProgress"

    vm["status"]["phase"] = "Running"
    state = reconcile(ctx, mode, state.status)
    assert state.status["phase"] == "Completed" and completed(state)["reason"] == "OperationCompleted"
    assert all(r["status"] == "Completed" for r in state.status["resources"])
    assert ("dropped missing VirtualImage iso" in completed(state)["message"]) is (mode == "BestEffort")


def test_a_machine_the_restore_stopped_is_started_even_when_its_status_write_was_lost() -> None:
    """What the restore knows of the machine's past is the VM's power request, not its own
    status: a cycle that stopped the machine and then lost its write still restarts it."""
    store = Store()
    world(store, vm_phase="Running")
    ctx = _ctx(store)
    reconcile(ctx, "Strict")  # the Stop goes out; this cycle's status is then lost
    vm = store.find(VIRTUAL_MACHINES, "linux-vm")
    assert vm is not None
    vm["status"]["phase"] = "Stopped"
    state = reconcile(ctx, "Strict")  # from Pending again, the machine now Stopped
    state = reconcile(ctx, "Strict", state.status)
    disk = store.find(VIRTUAL_DISKS, "root")
    assert disk is not None
    disk["status"] = {"phase": "Ready"}
    state = reconcile(ctx, "Strict", state.status)
    assert (requests.read(store.find(VIRTUAL_MACHINES, "linux-vm") or {}) or {}).get("action") == "Start"
    assert state.status["phase"] == "InProgress"


def test_a_machine_stopped_before_the_restore_stays_stopped() -> None:
    store = Store()
    world(store, vm_phase="Stopped")
    ctx = _ctx(store)
    state = reconcile(ctx, "Strict")
    state = reconcile(ctx, "Strict", state.status)
    disk = store.find(VIRTUAL_DISKS, "root")
    assert disk is not None
    disk["status"] = {"phase": "Ready"}
    state = reconcile(ctx, "Strict", state.status)
    assert state.status["phase"] == "Completed"
    assert requests.read(store.find(VIRTUAL_MACHINES, "linux-vm") or {}) is None, "no power request"


def with_kept_address(store: Store) -> None:
    secret = store.find(SECRETS, "d8v-vms-snap-u9")
    assert secret is not None
    secret["data"]["vmip"] = base64.b64encode(json.dumps({
        "metadata": {"name": "linux-vm"}, "spec": {"type": "Static", "staticIP": "10.66.0.9"}}).encode()).decode()


def test_the_kept_address_is_made_again_and_named_in_the_spec() -> None:
    store = Store()
    world(store)
    with_kept_address(store)
    ctx = context(store, VIRTUAL_MACHINES, VIRTUAL_DISKS, VIRTUAL_MACHINE_SNAPSHOTS, SECRETS, VIRTUAL_IMAGES,
                  CLUSTER_VIRTUAL_IMAGES, VIRTUAL_MACHINE_IP_ADDRESSES)
    ctx.recorder = Recorder()  # type: ignore[assignment]
    reconcile(ctx, "Strict")
    vmip = store.find(VIRTUAL_MACHINE_IP_ADDRESSES, "linux-vm")
    assert vmip is not None and vmip["spec"] == {"type": "Static", "staticIP": "10.66.0.9"}
    vm = store.find(VIRTUAL_MACHINES, "linux-vm")
    assert vm is not None and vm["spec"]["virtualMachineIPAddressName"] == "linux-vm"


def test_the_kept_address_held_by_another_machine_is_a_conflict() -> None:
    store = Store()
    world(store)
    with_kept_address(store)
    store.put(VIRTUAL_MACHINE_IP_ADDRESSES, {"metadata": {"name": "linux-vm", "namespace": NS},
                                             "status": {"virtualMachineName": "intruder"}})
    ctx = context(store, VIRTUAL_MACHINES, VIRTUAL_DISKS, VIRTUAL_MACHINE_SNAPSHOTS, SECRETS, VIRTUAL_IMAGES,
                  CLUSTER_VIRTUAL_IMAGES, VIRTUAL_MACHINE_IP_ADDRESSES)
    ctx.recorder = Recorder()  # type: ignore[assignment]
    state = reconcile(ctx, "Strict")
    assert state.status["phase"] == "Failed" and "'intruder'" in completed(state)["message"]


def unchanged_disk(store: Store, *, labels: dict[str, str] | None = None, size: str = "1Gi",
                   snapshot_node: str = "n1") -> None:
    """The disk as the snapshot kept it, its volume on n1, and its VirtualDiskSnapshot's volume."""
    store.put(VIRTUAL_DISKS, {"metadata": {"name": "root", "namespace": NS, "labels": labels or {"l": "1"}},
                              "spec": {"persistentVolumeClaim": {"size": size}}, "status": {"phase": "Ready"}})
    store.put(VIRTUAL_DISK_SNAPSHOTS, {"metadata": {"name": "root-u9", "namespace": NS},
                                       "status": {"phase": "Ready", "volumeSnapshotName": "vds-s1"}})
    store.put(VOLUMES, {"metadata": {"name": "root", "namespace": NS}, "spec": {"nodeName": "n1", "size": "1073741824"},
                        "status": {"phase": "Ready"}})
    store.put(VOLUMES, {"metadata": {"name": "vds-s1", "namespace": NS},
                        "spec": {"nodeName": snapshot_node, "size": "1073741824"}, "status": {"phase": "Ready"}})


def asked_to_revert() -> tuple[Store, Context, State, dict[str, Any]]:
    """A first Strict cycle over the unchanged disk: (store, context, state, the disk's volume)."""
    store = Store()
    world(store)
    unchanged_disk(store)
    ctx = _ctx(store)
    state = reconcile(ctx, "Strict")
    volume = store.find(VOLUMES, "root")
    assert volume is not None and volume["spec"]["revert"] == {"volume": "vds-s1", "id": "op1"}
    return store, ctx, state, volume


def test_the_disk_the_snapshot_kept_is_put_back_in_place() -> None:
    store, ctx, state, volume = asked_to_revert()
    assert not store.deleted and store.find(VIRTUAL_DISKS, "root") is not None, "the disk object stays"
    vm = store.find(VIRTUAL_MACHINES, "linux-vm")
    assert vm is not None and vm["metadata"]["annotations"][restore.RESTORED_BY] == "op1"
    assert state.status["phase"] == "InProgress"

    first = copy.deepcopy(state.status)
    state = reconcile(ctx, "Strict", state.status)
    assert state.status["phase"] == "InProgress", "not done before the node handler says so"
    assert state.status["resources"][1]["status"] == "InProgress"
    assert state.status == first, "the first cycle reported what the next one says: that one writes nothing"

    volume["status"] = {"phase": "Ready", "reverted": "op1"}
    state = reconcile(ctx, "Strict", state.status)
    assert state.status["phase"] == "Completed" and completed(state)["reason"] == "OperationCompleted"
    assert all(r["status"] == "Completed" for r in state.status["resources"])
    assert not store.deleted


def test_the_disks_are_asked_to_revert_before_the_machine_spec_is_written() -> None:
    store = Store()
    world(store)
    unchanged_disk(store)
    writes: list[str] = []
    patch, replace = store.patch, store.replace

    def patched(resource: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        time.sleep(0.2)  # a slow round trip: the spec's write must still come after it
        writes.append(f"patch {resource.plural}/{name}")
        return patch(resource, name, body, namespace)

    def replaced(resource: Any, body: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        writes.append(f"replace {resource.plural}/{body['metadata']['name']}")
        return replace(resource, body, subresource)

    store.patch, store.replace = patched, replaced  # type: ignore[method-assign]
    reconcile(_ctx(store), "Strict")
    assert writes == [f"patch {VOLUMES.plural}/root", f"replace {VIRTUAL_MACHINES.plural}/linux-vm"], (
        "the node handler works on the disks while the spec is written, not after it")


@pytest.mark.parametrize("difference", [{"labels": {"l": "2"}}, {"size": "2Gi"}, {"snapshot_node": "n2"}],
                         ids=["labels", "spec", "another-node"])
def test_a_disk_that_is_not_the_one_kept_is_made_again(difference: dict[str, Any]) -> None:
    store = Store()
    world(store)
    unchanged_disk(store, **difference)
    reconcile(_ctx(store), "Strict")
    assert (VIRTUAL_DISKS.plural, "root") in store.deleted
    volume = store.find(VOLUMES, "root")
    assert volume is not None and "revert" not in volume["spec"]


def test_a_refused_revert_fails_the_restore_saying_why() -> None:
    _, ctx, state, volume = asked_to_revert()
    volume["status"] = {"phase": "Ready", "revertRefused": "op1",
                        "message": "not put back to volume vds-s1: in use by default/linux-vm when asked"}
    state = reconcile(ctx, "Strict", state.status)
    assert state.status["phase"] == "Failed"
    assert "'root' was not put back" in completed(state)["message"] and "in use" in completed(state)["message"]


def test_a_refusal_seen_before_the_spec_is_restored_leaves_the_spec_alone() -> None:
    store, ctx, state, volume = asked_to_revert()
    vm = store.find(VIRTUAL_MACHINES, "linux-vm")
    assert vm is not None
    del vm["metadata"]["annotations"][restore.RESTORED_BY]  # as if the first cycle's replace was lost
    vm["spec"]["runPolicy"] = "AlwaysOff"
    volume["status"] = {"phase": "Ready", "revertRefused": "op1", "message": "in use by default/linux-vm"}
    state = reconcile(ctx, "Strict", state.status)
    assert state.status["phase"] == "Failed"
    vm = store.find(VIRTUAL_MACHINES, "linux-vm")
    assert vm is not None and restore.RESTORED_BY not in vm["metadata"]["annotations"]
    assert vm["spec"]["runPolicy"] == "AlwaysOff", "a failing restore does not replace the spec"


def test_a_failed_restore_takes_back_the_reverts_not_done() -> None:
    store, ctx, state, volume = asked_to_revert()
    del store.objects[(VIRTUAL_MACHINE_SNAPSHOTS.plural, NS, "snap")]  # deleted mid-way
    state = reconcile(ctx, "Strict", state.status)
    assert state.status["phase"] == "Failed"
    assert "revert" not in volume["spec"], "a revert left behind could happen later, on a disk in use"


def two_disks(*, data_as_kept: bool) -> tuple[Store, Context]:
    """A stopped machine with disks root and data, both in the snapshot; root as kept (put back
    in place), data as kept too or relabelled since (then made again from its snapshot: a copy)."""
    store = Store()
    world(store)
    unchanged_disk(store)
    kept = {"vm": {"metadata": {"name": "linux-vm"}, "spec": {**KEPT_SPEC, "blockDeviceRefs": REFS[:1] + [
                {"kind": "VirtualDisk", "name": "data"}]}},
            "vds": [{"metadata": {"name": n, "labels": {"l": "1"}}, "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}
                    for n in ("root", "data")]}
    store.put(SECRETS, {"metadata": {"name": "d8v-vms-snap-u9", "namespace": NS},
                        "data": {k: base64.b64encode(json.dumps(v).encode()).decode() for k, v in kept.items()}})
    snap = store.find(VIRTUAL_MACHINE_SNAPSHOTS, "snap")
    assert snap is not None
    snap["status"]["virtualDiskSnapshotNames"] = ["root-u9", "data-u9"]
    store.put(VIRTUAL_DISKS, {"metadata": {"name": "data", "namespace": NS, "labels": {"l": "1" if data_as_kept else "2"}},
                              "spec": {"persistentVolumeClaim": {"size": "1Gi"}}, "status": {"phase": "Ready"}})
    store.put(VIRTUAL_DISK_SNAPSHOTS, {"metadata": {"name": "data-u9", "namespace": NS},
                                       "status": {"phase": "Ready", "volumeSnapshotName": "vds-s2"}})
    store.put(VOLUMES, {"metadata": {"name": "data", "namespace": NS}, "spec": {"nodeName": "n1", "size": "1073741824"},
                        "status": {"phase": "Ready"}})
    store.put(VOLUMES, {"metadata": {"name": "vds-s2", "namespace": NS},
                        "spec": {"nodeName": "n1", "size": "1073741824"}, "status": {"phase": "Ready"}})
    return store, _ctx(store)


def _reverted(store: Store, name: str) -> None:
    volume = store.find(VOLUMES, name)
    assert volume is not None and volume["spec"]["revert"]["id"] == "op1"
    volume["status"] = {"phase": "Ready", "reverted": "op1"}


def test_in_place_reverts_are_reported_together_not_one_by_one() -> None:
    """They end within milliseconds of each other: a status saying one of them would be one more
    write on the way to Completed, stale at once."""
    store, ctx = two_disks(data_as_kept=True)
    state = reconcile(ctx, "Strict")
    assert completed(state)["message"] == "disks restored: 0/2"
    first = copy.deepcopy(state.status)

    _reverted(store, "root")
    state = reconcile(ctx, "Strict", state.status)
    assert state.status == first, "one revert of two done: nothing new to write"

    told = copy.deepcopy(first)  # as if root's end had been written (a copy was pending then)
    told["resources"][1].update(status="Completed")
    again = reconcile(ctx, "Strict", told)
    assert [r["status"] for r in again.status["resources"]] == ["Completed", "Completed", "InProgress"], \
        "what was reported is not taken back"

    _reverted(store, "data")
    state = reconcile(ctx, "Strict", state.status)
    assert state.status["phase"] == "Completed"
    assert [r["status"] for r in state.status["resources"]] == ["Completed"] * 3
    assert not store.deleted


def test_a_disk_made_again_is_reported_as_it_ends() -> None:
    """A disk copied from its snapshot takes its time: its end is news while another disk's
    revert is still under way."""
    store, ctx = two_disks(data_as_kept=False)
    state = reconcile(ctx, "Strict")
    assert (VIRTUAL_DISKS.plural, "data") in store.deleted
    state = reconcile(ctx, "Strict", state.status)  # made again from its snapshot
    data = store.find(VIRTUAL_DISKS, "data")
    assert data is not None and data["metadata"]["annotations"][restore.RESTORED_BY] == "op1"

    data["status"] = {"phase": "Ready"}
    state = reconcile(ctx, "Strict", state.status)
    assert completed(state)["message"] == "disks restored: 1/2"
    assert [r["status"] for r in state.status["resources"]] == ["Completed", "InProgress", "Completed"]
