"""VM placement over several nodes in a real `dvp server`, driven with kubectl 1.33: the nodes
are Node objects registered through the API (their leases renewed, tests.support.fakenodes),
which is enough for placement decisions (no VM runs on them).

Six VMs spread two per node; required anti-affinity keeps two VMs apart that a preference
would put together; a nodeSelector pins one; `kubectl cordon` (a patch of spec.unschedulable)
keeps new VMs off a node; an anti-affinity term with a namespaceSelector sees the VMs of the
namespaces it selects; a VirtualDisk provisioned on a node pins its next VM there and says
so while that node cannot take it, or is gone; ten VMs applied at once on room for eight: eight placed, two
Pending naming memory, placed once two others are deleted."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import polling
from tests.services.apiserver import ApiServerProcess
from tests.services.kubectl import get, kubectl
from tests.support.fakenodes import FakeNodes

pytestmark = pytest.mark.integration
NODES = ("sched-a", "sched-b", "sched-c")
eventually = functools.partial(polling.eventually, timeout=90, interval=0.3)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("sched") / "data")
    srv.start(60)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def nodes(server: ApiServerProcess) -> Iterator[FakeNodes]:
    fake = FakeNodes(server)
    for name in NODES:
        fake.add(name, cpu="8", memory="8Gi")
    yield fake
    fake.stop()


def vm(name: str, *, memory: str = "512Mi", labels: dict[str, str] | None = None, disk: str | None = None,
       **spec: Any) -> dict[str, Any]:
    """A VM with one disk: `disk`, or its own empty `<name>-root` (applied with it, see `apply`)."""
    return {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
            "spec": {"virtualMachineClassName": "generic", "runPolicy": "AlwaysOff", "cpu": {"cores": 1},
                     "memory": {"size": memory},
                     "blockDeviceRefs": [{"kind": "VirtualDisk", "name": disk or f"{name}-root"}], **spec}}


def empty_disk(name: str) -> dict[str, Any]:
    """An empty VirtualDisk: WaitForFirstConsumer, provisioned on the node of its first VM."""
    return {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualDisk",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}


def apply(server: ApiServerProcess, *docs: dict[str, Any]) -> None:
    """Apply `docs` in one request list, with the own `<vm>-root` disk of each VM that uses one."""
    own = [empty_disk(f"{d['metadata']['name']}-root") for d in docs if d["kind"] == "VirtualMachine"
           and d["spec"]["blockDeviceRefs"][0]["name"] == f"{d['metadata']['name']}-root"]
    kubectl(server, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                           "items": [*own, *docs]}))


def node_of(server: ApiServerProcess, name: str) -> str:
    return str(get(server, "vm", name).get("status", {}).get("nodeName") or "")


def placed(server: ApiServerProcess, *names: str) -> dict[str, str]:
    where = eventually(lambda: (w := {n: node_of(server, n) for n in names}) and all(w.values()) and w)
    result: dict[str, str] = where
    return result


def running_condition(server: ApiServerProcess, name: str) -> dict[str, Any]:
    conds = get(server, "vm", name).get("status", {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "Running"), {})


def delete(server: ApiServerProcess, *names: str) -> None:
    kubectl(server, "delete", "vm", *names, "--wait=false")
    eventually(lambda: all(not get(server, "vm", n) for n in names))


def prefer(node: str) -> dict[str, Any]:
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}}]}}


def test_six_vms_spread_two_per_node(server: ApiServerProcess, nodes: FakeNodes) -> None:
    names = [f"spread-{i}" for i in range(6)]
    apply(server, *(vm(n) for n in names))
    where = placed(server, *names)
    assert sorted(Counter(where.values()).values()) == [2, 2, 2], where
    delete(server, *names)


def test_anti_affinity_keeps_two_apart_and_a_node_selector_pins_one(server: ApiServerProcess,
                                                                      nodes: FakeNodes) -> None:
    anti = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
    affinity = {**prefer("sched-a"),
                "virtualMachineAndPodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [anti]}}
    apply(server, vm("db-1", labels={"app": "db"}, affinity=affinity))
    assert placed(server, "db-1") == {"db-1": "sched-a"}
    apply(server, vm("db-2", labels={"app": "db"}, affinity=affinity))
    assert placed(server, "db-2")["db-2"] != "sched-a"
    kubectl(server, "label", "node", "sched-c", "disk=ssd")
    apply(server, vm("pinned", nodeSelector={"disk": "ssd"}, affinity=prefer("sched-a")))
    assert placed(server, "pinned") == {"pinned": "sched-c"}
    delete(server, "db-1", "db-2", "pinned")


def test_a_namespace_selector_sees_the_vms_of_the_namespaces_it_selects(server: ApiServerProcess,
                                                                         nodes: FakeNodes) -> None:
    kubectl(server, "create", "namespace", "sched-prod")
    kubectl(server, "label", "namespace", "sched-prod", "env=prod")
    other, disk = vm("prod-db", labels={"app": "nsdb"}, affinity=prefer("sched-a")), empty_disk("prod-db-root")
    for doc in (other, disk):
        doc["metadata"]["namespace"] = "sched-prod"
    kubectl(server, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [disk, other]}))
    eventually(lambda: get(server, "vm", "prod-db", "-n", "sched-prod").get("status", {}).get("nodeName") == "sched-a")
    # in default, a VM that must not share a node with a db of any namespace labelled env=prod
    anti = {"virtualMachineAndPodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "nsdb"}}, "topologyKey": "kubernetes.io/hostname",
         "namespaceSelector": {"matchLabels": {"env": "prod"}}}]}}
    apply(server, vm("ns-aware", affinity={**prefer("sched-a"), **anti}))
    assert placed(server, "ns-aware")["ns-aware"] != "sched-a"
    # without the selector the term looks in default only, and the preference wins
    apply(server, vm("ns-blind", affinity={**prefer("sched-a"), "virtualMachineAndPodAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "nsdb"}},
                                                            "topologyKey": "kubernetes.io/hostname"}]}}))
    assert placed(server, "ns-blind") == {"ns-blind": "sched-a"}
    delete(server, "ns-aware", "ns-blind")
    kubectl(server, "delete", "namespace", "sched-prod", "--wait=false")


def test_cordoned_node_is_avoided_until_uncordoned(server: ApiServerProcess, nodes: FakeNodes) -> None:
    kubectl(server, "cordon", "sched-a")
    assert get(server, "node", "sched-a")["spec"]["unschedulable"] is True
    try:
        names = [f"cordon-{i}" for i in range(3)]
        apply(server, *(vm(n, affinity=prefer("sched-a")) for n in names))
        assert "sched-a" not in placed(server, *names).values()
    finally:
        server.kubectl("uncordon", "sched-a")  # the oldest supported client (kubectl 1.20) patches too
    assert not get(server, "node", "sched-a")["spec"].get("unschedulable")
    apply(server, vm("after-uncordon", affinity=prefer("sched-a")))
    assert placed(server, "after-uncordon") == {"after-uncordon": "sched-a"}
    delete(server, *names, "after-uncordon")


def test_a_provisioned_disk_pins_its_vm_and_says_so_while_its_node_is_cordoned(server: ApiServerProcess,
                                                                               nodes: FakeNodes) -> None:
    apply(server, empty_disk("local-root"), vm("first-user", disk="local-root", affinity=prefer("sched-b")))
    assert placed(server, "first-user") == {"first-user": "sched-b"}
    eventually(lambda: get(server, "internalvirtualdiskvolumes.internal.virtualization.deckhouse.io", "local-root")
               .get("spec", {}).get("nodeName") == "sched-b")
    # what sched-b's node handler would report once the volume is made: the disk becomes Ready
    code, body = server.raw("PATCH", "/apis/internal.virtualization.deckhouse.io/v1/namespaces/default/"
                            "internalvirtualdiskvolumes/local-root/status",
                            json.dumps({"status": {"phase": "Ready", "capacityBytes": 1 << 30,
                                                   "capacity": "1Gi"}}).encode(),
                            headers={"Content-Type": "application/merge-patch+json"})
    assert code == 200, body
    eventually(lambda: get(server, "vd", "local-root").get("status", {}).get("phase") == "Ready")
    delete(server, "first-user")
    kubectl(server, "cordon", "sched-b")
    try:
        apply(server, vm("second-user", disk="local-root", affinity=prefer("sched-a")))
        cond = eventually(lambda: (c := running_condition(server, "second-user")).get("message", "")
                          .startswith("VirtualDisk 'local-root' is provisioned on node sched-b") and c)
        assert "1 node(s) were unschedulable" in cond["message"] and not node_of(server, "second-user")
    finally:
        kubectl(server, "uncordon", "sched-b")
    assert placed(server, "second-user") == {"second-user": "sched-b"}
    delete(server, "second-user")
    # the node itself gone (last: the module's other tests use it)
    nodes.down("sched-b")
    kubectl(server, "delete", "node", "sched-b")
    apply(server, vm("third-user", disk="local-root"))
    gone = eventually(lambda: (c := running_condition(server, "third-user")).get("message", "")
                      .startswith("VirtualDisk 'local-root' is provisioned on node sched-b, which no longer exists")
                      and c)
    assert gone["status"] == "False" and not node_of(server, "third-user")


def test_ten_vms_at_once_on_room_for_eight(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = ApiServerProcess(tmp_path_factory.mktemp("room") / "data")
    srv.start(60)
    fake = FakeNodes(srv)
    try:
        fake.add("room-a", cpu="16", memory="4Gi")
        fake.add("room-b", cpu="16", memory="4Gi")
        names = [f"room-{i}" for i in range(10)]
        apply(srv, *(vm(n, memory="1Gi") for n in names))

        def settled() -> dict[str, str] | None:
            where = {n: node_of(srv, n) for n in names}
            pending = [n for n, node in where.items() if not node]
            if len(pending) == 2 and all("Insufficient memory" in running_condition(srv, n).get("message", "")
                                         for n in pending):
                return where
            return None
        where = eventually(settled)
        assert Counter(where.values()) == {"room-a": 4, "room-b": 4, "": 2}
        pending = [n for n, node in where.items() if not node]
        message = running_condition(srv, pending[0])["message"]
        assert message.startswith("0/2 nodes are available: 2 Insufficient memory."), message
        assert get(srv, "vm", pending[0])["status"]["phase"] == "Pending"
        # room freed: the two pending VMs take it, still four per node
        gone = [next(n for n, node in where.items() if node == "room-a"),
                next(n for n, node in where.items() if node == "room-b")]
        delete(srv, *gone)
        now = placed(srv, *pending)
        assert sorted(now.values()) == ["room-a", "room-b"], now
    finally:
        fake.stop()
        srv.stop()
