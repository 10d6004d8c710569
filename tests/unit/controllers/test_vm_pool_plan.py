"""VirtualMachinePool scaling as a table: how many members to create, which to delete under
each scaleDownPolicy (Terminating members count and are never picked), and what a new
member and its disks look like (labels, owner, per-member disk names)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.controllers.vmpool import plan as P


def m(name: str, created: str, *, terminating: bool = False) -> P.Member:
    return P.Member(name, created, terminating=terminating)


THREE = [m("a", "2026-01-01T00:00:01Z"), m("b", "2026-01-01T00:00:02Z"), m("c", "2026-01-01T00:00:03Z")]


@pytest.mark.parametrize(("desired", "policy", "members", "create", "delete"), [
    (3, "NewestFirst", [], 3, []),
    (3, "NewestFirst", THREE[:1], 2, []),
    (3, "NewestFirst", THREE, 0, []),
    (1, "NewestFirst", THREE, 0, ["c", "b"]),
    (1, "OldestFirst", THREE, 0, ["a", "b"]),
    (0, "OldestFirst", THREE, 0, ["a", "b", "c"]),
    (1, "Explicit", THREE, 0, []),
    # a Terminating member already counts toward the reduction and is never picked again
    (2, "NewestFirst", [*THREE[:2], m("c", "2026-01-01T00:00:03Z", terminating=True)], 0, []),
    (1, "NewestFirst", [*THREE[:2], m("c", "2026-01-01T00:00:03Z", terminating=True)], 0, ["b"]),
    # ... and it is not replaced early either: still a member until it is gone
    (3, "NewestFirst", [*THREE[:2], m("c", "2026-01-01T00:00:03Z", terminating=True)], 0, []),
    # created in the same second: the name breaks the tie, the same way every time
    (1, "NewestFirst", [m("x", "2026-01-01T00:00:01Z"), m("y", "2026-01-01T00:00:01Z")], 0, ["y"]),
], ids=["from-zero", "up-by-two", "steady", "newest-first", "oldest-first", "to-zero", "explicit-never",
        "terminating-counts", "terminating-not-picked", "terminating-not-replaced", "tie-by-name"])
def test_plan(desired: int, policy: str, members: list[P.Member], create: int, delete: list[str]) -> None:
    assert P.plan(desired, policy, members) == P.Plan(create=create, delete=delete)


POOL: dict[str, Any] = {
    "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachinePool",
    "metadata": {"name": "web", "namespace": "ns", "uid": "u-1"},
    "spec": {"replicas": 2, "scaleDownPolicy": "NewestFirst",
             "virtualDiskTemplates": [{"name": "root", "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}],
             "virtualMachineTemplate": {
                 "metadata": {"labels": {"app": "web"}, "annotations": {"note": "x"}},
                 "spec": {"virtualMachineClassName": "generic", "cpu": {"cores": 1}, "memory": {"size": "1Gi"},
                          "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"},
                                              {"kind": "ClusterVirtualImage", "name": "root"}]}}},
}


def test_a_member_is_the_template_with_the_pool_labels_owner_and_its_own_disk() -> None:
    vm = P.member(POOL, "web-abcde")
    meta = vm["metadata"]
    assert (vm["kind"], meta["name"], meta["namespace"]) == ("VirtualMachine", "web-abcde", "ns")
    assert meta["labels"] == {"app": "web", P.LABEL_POOL_UID: "u-1", P.LABEL_POOL: "web",
                              P.LABEL_TEMPLATE_HASH: P.template_hash(POOL)}
    assert meta["annotations"] == {"note": "x"}
    assert meta["ownerReferences"] == [{"apiVersion": "virtualization.deckhouse.io/v1alpha2",
                                        "kind": "VirtualMachinePool", "name": "web", "uid": "u-1",
                                        "controller": True, "blockOwnerDeletion": True}]
    # only the VirtualDisk named by a virtualDiskTemplates entry becomes the member's own
    assert vm["spec"]["blockDeviceRefs"] == [{"kind": "VirtualDisk", "name": "web-abcde-root"},
                                             {"kind": "ClusterVirtualImage", "name": "root"}]
    assert POOL["spec"]["virtualMachineTemplate"]["spec"]["blockDeviceRefs"][0]["name"] == "root"  # untouched
    disks = P.member_disks(POOL, {**vm, "metadata": {**meta, "uid": "vm-1"}})
    assert [(d["metadata"]["name"], d["spec"], d["metadata"]["ownerReferences"][0]["uid"]) for d in disks] == [
        ("web-abcde-root", {"persistentVolumeClaim": {"size": "1Gi"}}, "vm-1")]


def test_template_hash_follows_the_template_only() -> None:
    scaled = copy.deepcopy(POOL)
    scaled["spec"]["replicas"] = 5
    changed = copy.deepcopy(POOL)
    changed["spec"]["virtualMachineTemplate"]["spec"]["cpu"]["cores"] = 2
    assert P.template_hash(scaled) == P.template_hash(POOL) != P.template_hash(changed)
    assert P.selector(POOL) == f"{P.LABEL_POOL_UID}=u-1"


def test_observed_counts_terminating_as_replicas_but_not_as_ready_or_updated() -> None:
    members = [P.Member("a", "1", running=True, template_hash="h"), P.Member("b", "2", template_hash="old"),
               P.Member("c", "3", terminating=True, running=True, template_hash="h")]
    assert P.Observed.of(members, "h") == P.Observed(replicas=3, ready=1, updated=1, live=2)


def test_a_member_on_an_old_template_is_rolled_in_place() -> None:
    vm = P.member(POOL, "web-abcde")
    vm["metadata"].update(uid="vm-1", resourceVersion="7", labels={**vm["metadata"]["labels"], "team": "ops"})
    vm["status"] = {"phase": "Running"}
    newer = copy.deepcopy(POOL)
    newer["spec"]["virtualMachineTemplate"]["spec"]["cpu"] = {"cores": 2}
    newer["spec"]["virtualMachineTemplate"]["metadata"]["labels"]["tier"] = "front"
    newer["spec"]["virtualMachineTemplate"]["spec"]["blockDeviceRefs"].append({"kind": "VirtualImage", "name": "iso"})
    out = P.rolled(newer, vm)
    meta = out["metadata"]
    assert (meta["name"], meta["uid"], meta["resourceVersion"]) == ("web-abcde", "vm-1", "7")  # the same object
    assert meta["labels"][P.LABEL_TEMPLATE_HASH] == P.template_hash(newer) != P.template_hash(POOL)
    assert meta["labels"]["tier"] == "front" and meta["labels"]["team"] == "ops"  # its own labels stay
    assert out["spec"]["cpu"] == {"cores": 2}
    assert out["spec"]["blockDeviceRefs"] == vm["spec"]["blockDeviceRefs"]  # devices change when recreated
    assert "status" not in out and vm["spec"] != out["spec"]  # the cached object is left alone


@pytest.mark.parametrize(("desired", "policy", "targets", "delete"), [
    (1, "NewestFirst", ["a"], ["a", "c"]),  # the named one first, then the policy's pick
    (2, "Explicit", ["b"], ["b"]),
    (1, "Explicit", ["b"], ["b"]),  # Explicit never picks on its own
    (2, "OldestFirst", ["zz"], ["a"]),  # a name that is no member changes nothing
])
def test_named_replicas_go_first(desired: int, policy: str, targets: list[str], delete: list[str]) -> None:
    assert P.plan(desired, policy, THREE, targets) == P.Plan(create=0, delete=delete)


def test_members_awaiting_a_restart_are_counted() -> None:
    vm = P.member(POOL, "web-abcde")
    vm["status"] = {"phase": "Running", "conditions": [
        {"type": "AwaitingRestartToApplyConfiguration", "status": "True"}]}
    member = P.Member.of(vm)
    assert member.restart_pending and member.running
    assert P.Observed.of([member, P.Member("b", "t")], "x").restart_pending == 1
