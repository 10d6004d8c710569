"""Clones: DVP's naming rules (nameReplacement, prefix/suffix), a clone gets a new IP and new MACs
and no labels, names taken already are conflicts, BestEffort drops a missing image; VMOP Clone
takes a temporary snapshot, makes the clone and drops the snapshot once Completed is stored; VirtualMachineSnapshotOperation
makes a machine from an existing snapshot (DryRun changes nothing)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINE_OPERATIONS,
    VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS,
    VIRTUAL_MACHINE_SNAPSHOTS,
    VIRTUAL_MACHINES,
)
from controlplane.common.kube.client import SECRETS
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.snapshot import vmsop
from controlplane.controllers.snapshot.clone import ClonePlan, new_name
from controlplane.controllers.snapshot.kept import read_kept
from controlplane.controllers.vmop.clone import CloneHandler, DropTemporarySnapshot, snapshot_name
from tests.unit.controllers.snapshot_support import Store, context

NS = "default"
VM_SPEC = {"runPolicy": "AlwaysOnUnlessStoppedManually", "virtualMachineIPAddressName": "db-ip",
           "networks": [{"type": "Main"}, {"type": "Network", "name": "n", "virtualMachineMACAddressName": "db-1"}],
           "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "database-root"}, {"kind": "VirtualImage", "name": "iso"}]}


class Recorder:
    def record(self, *_: Any, **__: Any) -> None:
        return None


def _ctx(store: Store) -> Context:
    ctx = context(store, VIRTUAL_MACHINES, VIRTUAL_DISKS, VIRTUAL_MACHINE_SNAPSHOTS, SECRETS, VIRTUAL_IMAGES,
                  CLUSTER_VIRTUAL_IMAGES, VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS)
    ctx.recorder = Recorder()  # type: ignore[assignment]
    return ctx


def snapshot(store: Store, name: str = "database-snapshot", uid: str = "u1") -> None:
    kept = {"vm": {"metadata": {"name": "database", "labels": {"app": "db"}}, "spec": VM_SPEC},
            "vds": [{"metadata": {"name": "database-root"}, "spec": {"persistentVolumeClaim": {"size": "2Gi"}}}]}
    store.put(SECRETS, {"metadata": {"name": f"d8v-vms-{name}-{uid}", "namespace": NS},
                        "data": {k: base64.b64encode(json.dumps(v).encode()).decode() for k, v in kept.items()}})
    store.put(VIRTUAL_MACHINE_SNAPSHOTS, {"metadata": {"name": name, "namespace": NS, "uid": uid},
                                          "status": {"phase": "Ready",
                                                     "virtualMachineSnapshotSecretName": f"d8v-vms-{name}-{uid}",
                                                     "virtualDiskSnapshotNames": [f"database-root-{uid}"]}})


@pytest.mark.parametrize(("kind", "name", "opts", "expected"), [
    ("VirtualMachine", "database", {"customization": {"namePrefix": "clone-", "nameSuffix": "-prod"}},
     "clone-database-prod"),
    ("VirtualDisk", "database-root", {"customization": {"namePrefix": "clone-", "nameSuffix": "-prod"}},
     "clone-database-root-prod"),
    ("VirtualMachine", "database", {"nameReplacement": [{"from": {"kind": "VirtualMachine", "name": "database"},
                                                         "to": "database-clone"}]}, "database-clone"),
    ("VirtualDisk", "database", {"nameReplacement": [{"from": {"kind": "VirtualMachine", "name": "database"},
                                                      "to": "x"}], "customization": {"nameSuffix": "-c"}}, "database-c"),
    ("VirtualDisk", "database-root", {"nameReplacement": [{"from": {"name": "database-root"}, "to": "r"}]}, "r"),
], ids=["vm-prefix-suffix", "disk-prefix-suffix", "vm-replaced", "other-kind-not-replaced", "kindless-rule"])
def test_names_follow_dvp(kind: str, name: str, opts: dict[str, Any], expected: str) -> None:
    assert new_name(kind, name, opts) == expected


def plan_for(store: Store, opts: dict[str, Any]) -> ClonePlan:
    ctx = _ctx(store)
    state = State(ctx, VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS, {"metadata": {"name": "op", "namespace": NS, "uid": "op1"}})
    secret = store.find(SECRETS, "d8v-vms-database-snapshot-u1") or {}
    return ClonePlan(state, store.find(VIRTUAL_MACHINE_SNAPSHOTS, "database-snapshot") or {}, read_kept(secret), opts)


def test_the_clone_gets_new_addresses_no_labels_and_disks_from_the_snapshot() -> None:
    store = Store()
    snapshot(store)
    plan = plan_for(store, {"mode": "Strict", "customization": {"namePrefix": "clone-"}})
    spec = plan.vm["spec"]
    assert plan.vm["metadata"]["name"] == "clone-database" and "labels" not in plan.vm["metadata"]
    assert "virtualMachineIPAddressName" not in spec, "a new IP"
    assert spec["networks"][1] == {"type": "Network", "name": "n"}, "a new MAC"
    assert spec["blockDeviceRefs"][0] == {"kind": "VirtualDisk", "name": "clone-database-root"}
    assert plan.disks[0]["spec"] == {"dataSource": {"type": "ObjectRef", "objectRef": {
        "kind": "VirtualDiskSnapshot", "name": "database-root-u1"}}, "persistentVolumeClaim": {"size": "2Gi"}}
    assert [m["name"] for m in plan.missing] == ["iso"] and spec["blockDeviceRefs"][1]["name"] == "iso"
    best = plan_for(store, {"mode": "BestEffort", "customization": {"namePrefix": "clone-"}})
    assert [r["name"] for r in best.vm["spec"]["blockDeviceRefs"]] == ["clone-database-root"]


def test_a_taken_name_is_a_conflict() -> None:
    store = Store()
    snapshot(store)
    store.put(VIRTUAL_DISKS, {"metadata": {"name": "clone-database-root", "namespace": NS}})
    plan = plan_for(store, {"mode": "Strict", "customization": {"namePrefix": "clone-"}})
    assert [(c["kind"], c["name"]) for c in plan.conflicts] == [("VirtualDisk", "clone-database-root")]


def vmsop_state(ctx: Context, mode: str, status: dict[str, Any] | None = None) -> State:
    obj = {"metadata": {"name": "clone-database-from-snapshot", "namespace": NS, "uid": "op2", "generation": 1,
                        "resourceVersion": "1"},
           "spec": {"type": "CreateVirtualMachine", "virtualMachineSnapshotName": "database-snapshot",
                    "createVirtualMachine": {"mode": mode, "nameReplacement": [
                        {"from": {"kind": "VirtualMachine", "name": "database"}, "to": "database-clone"},
                        {"from": {"kind": "VirtualDisk", "name": "database-root"}, "to": "database-clone-root"}]}},
           "status": status or {}}
    state = State(ctx, VIRTUAL_MACHINE_SNAPSHOT_OPERATIONS, obj)
    for handler in (vmsop.InitHandler(), vmsop.CreateHandler()):
        handler.handle(state)
        if state.stop:
            break
    return state


def test_snapshot_operation_creates_the_machine_of_the_guide() -> None:
    store = Store()
    snapshot(store)
    ctx = _ctx(store)
    dry = vmsop_state(ctx, "DryRun")
    assert dry.status["phase"] == "Completed" and store.find(VIRTUAL_MACHINES, "database-clone") is None
    state = vmsop_state(ctx, "Strict")
    assert state.status["phase"] == "InProgress"
    vm = store.find(VIRTUAL_MACHINES, "database-clone")
    disk = store.find(VIRTUAL_DISKS, "database-clone-root")
    assert vm is not None and disk is not None
    disk["status"] = {"phase": "Ready"}
    state = vmsop_state(ctx, "Strict", state.status)
    assert state.status["phase"] == "Completed"
    assert [(r["kind"], r["name"], r["status"]) for r in state.status["resources"]] == [
        ("VirtualMachine", "database-clone", "Completed"), ("VirtualDisk", "database-clone-root", "Completed")]


def test_snapshot_operation_without_snapshot_fails() -> None:
    state = vmsop_state(_ctx(Store()), "Strict")
    assert state.status["phase"] == "Failed"
    assert state.status["conditions"][0]["reason"] == "VirtualMachineSnapshotNotFound"


def test_vmop_clone_takes_a_temporary_snapshot_and_drops_it() -> None:
    store = Store()
    store.put(VIRTUAL_MACHINES, {"apiVersion": VIRTUAL_MACHINES.api_version, "kind": "VirtualMachine",
                                 "metadata": {"name": "database", "namespace": NS}, "spec": VM_SPEC,
                                 "status": {"phase": "Stopped"}})
    ctx = _ctx(store)
    obj = {"metadata": {"name": "clone-database", "namespace": NS, "uid": "op3", "generation": 1,
                        "resourceVersion": "1"},
           "spec": {"type": "Clone", "virtualMachineName": "database",
                    "clone": {"mode": "Strict", "customization": {"namePrefix": "clone-", "nameSuffix": "-prod"}}},
           "status": {"phase": "Pending"}}
    state = State(ctx, VIRTUAL_MACHINE_OPERATIONS, obj)
    CloneHandler().handle(state)
    temp = store.find(VIRTUAL_MACHINE_SNAPSHOTS, snapshot_name(state))
    assert temp is not None and temp["spec"] == {"virtualMachineName": "database", "requiredConsistency": True,
                                                 "keepIPAddress": "Never"}
    assert temp["metadata"]["ownerReferences"][0]["uid"] == "op3"
    del store.objects[(VIRTUAL_MACHINE_SNAPSHOTS.plural, NS, snapshot_name(state))]
    snapshot(store, name=snapshot_name(state), uid="t1")
    state = State(ctx, VIRTUAL_MACHINE_OPERATIONS, {**obj, "status": state.status})
    CloneHandler().handle(state)
    disk = store.find(VIRTUAL_DISKS, "clone-database-root-prod")
    assert disk is not None and store.find(VIRTUAL_MACHINES, "clone-database-prod") is not None
    disk["status"] = {"phase": "Ready"}
    state = State(ctx, VIRTUAL_MACHINE_OPERATIONS, {**obj, "status": state.status})
    CloneHandler().handle(state)
    assert state.status["phase"] == "Completed"
    assert state.requeue_after == 0, "the cycle after Completed comes at once"
    assert (VIRTUAL_MACHINE_SNAPSHOTS.plural, snapshot_name(state)) not in store.deleted, "Completed waits for no delete"
    DropTemporarySnapshot().handle(state)  # Completed not stored yet
    assert (VIRTUAL_MACHINE_SNAPSHOTS.plural, snapshot_name(state)) not in store.deleted
    state = State(ctx, VIRTUAL_MACHINE_OPERATIONS, {**obj, "status": state.status})
    DropTemporarySnapshot().handle(state)
    assert (VIRTUAL_MACHINE_SNAPSHOTS.plural, snapshot_name(state)) in store.deleted
