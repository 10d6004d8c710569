"""The VM scheduler's decisions: spreading, selectors, node affinity, taints, cordon, node
health, VM affinity and anti-affinity, disk pinning, and simultaneous placements that never
over-commit a node (the VM controller's `choose_node` over real informer caches)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINES, VOLUMES
from controlplane.common.kube.client import NODES
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.scheduler.assumed import AssumedPlacements
from controlplane.controllers.scheduler.decide import Request, decide
from controlplane.controllers.scheduler.vmaffinity import Placed
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.vm.placement import choose_node
from tests.unit.controllers.recorders import CollectedEvents

HOST = "kubernetes.io/hostname"


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", labels: dict[str, str] | None = None,
         ready: bool = True, unschedulable: bool = False, taints: list[dict[str, Any]] | None = None,
         conditions: list[dict[str, Any]] | None = None, kvm: bool = True) -> dict[str, Any]:
    conds = [{"type": "Ready", "status": "True" if ready else "False", "reason": "NodeHandlerReady"},
             *(conditions or [])]
    return {"metadata": {"name": name, "labels": {HOST: name, "virtualization.deckhouse.io/kvm": str(kvm).lower(),
                                                  **(labels or {})}},
            "spec": {"unschedulable": unschedulable, "taints": taints or []},
            "status": {"allocatable": {"cpu": cpu, "memory": memory}, "conditions": conds}}


def vm(name: str, *, ns: str = "default", labels: dict[str, str] | None = None,
       affinity: dict[str, Any] | None = None) -> Placed:
    return Placed(namespace=ns, name=name, labels=labels or {}, affinity=affinity or {})


def req(name: str = "vm", *, cpu: float = 1, memory: str = "1Gi", labels: dict[str, str] | None = None,
        affinity: dict[str, Any] | None = None, node_selector: dict[str, str] | None = None,
        tolerations: list[dict[str, Any]] | None = None, pinned: str | None = None) -> Request:
    from controlplane.common import quantity
    spec = {"affinity": affinity or {}}
    return Request(vm=vm(name, labels=labels, affinity=affinity), spec=spec, cpu=cpu, memory=quantity.to_bytes(memory),
                   selectors=[node_selector], tolerations=tolerations or [], pinned=pinned,
                   pinned_by='VirtualDisk "root"' if pinned else "")


def place(r: Request, nodes: list[dict[str, Any]], placed: dict[str, list[tuple[Placed, float, int]]] | None = None,
          ) -> Any:
    placed = placed or {}

    def load(n: str) -> tuple[float, int]:
        return sum(p[1] for p in placed.get(n, [])), sum(p[2] for p in placed.get(n, []))
    return decide(r, nodes, load=load, placed={n: [p[0] for p in ps] for n, ps in placed.items()})


def test_least_allocated_spreads_vms_over_the_nodes() -> None:
    nodes = [node("a"), node("b"), node("c")]
    placed: dict[str, list[tuple[Placed, float, int]]] = {}
    for i in range(6):
        r = req(f"vm{i}")
        n = place(r, nodes, placed).node
        placed.setdefault(n, []).append((r.vm, r.cpu, r.memory))
    assert sorted(len(v) for v in placed.values()) == [2, 2, 2]


def test_kvm_nodes_come_first_even_when_busier() -> None:
    busy = {"a": [(vm("x"), 3.0, 6 << 30)]}
    assert place(req(), [node("a"), node("b", kvm=False)], busy).node == "a"


@pytest.mark.parametrize("nodes, r, expected, refusal", [
    ([node("a", unschedulable=True), node("b")], req(), "b", "1 node(s) were unschedulable"),
    ([node("a", ready=False), node("b")], req(), "b", "1 node(s) were not ready"),
    ([node("a", conditions=[{"type": "ClockSynchronized", "status": "False", "reason": "ClockSkewed",
                             "message": "600s ahead"}]), node("b")], req(), "b", "ClockSkewed: 600s ahead"),
    ([node("a", conditions=[{"type": "DVCRAccess", "status": "False", "reason": "DVCRCredentialsRefused"}]),
      node("b")], req(), "b", "1 node(s) reported a problem"),
    ([node("a", labels={"disk": "ssd"}), node("b")], req(node_selector={"disk": "ssd"}), "a",
     "1 node(s) didn't match Pod's node affinity/selector"),
    ([node("a", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]), node("b")], req(), "b",
     "1 node(s) had untolerated taint {dedicated: db}"),
    ([node("a", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]), node("b", cpu="1")],
     req(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]), "a", None),
    ([node("a", taints=[{"key": "soft", "effect": "PreferNoSchedule"}])], req(), "a", None),
], ids=["cordoned", "not-ready", "clock-skew", "dvcr-refused", "node-selector", "taint", "toleration",
        "prefer-no-schedule-taint"])
def test_filters(nodes: list[dict[str, Any]], r: Request, expected: str, refusal: str | None) -> None:
    assert place(r, nodes).node == expected
    if refusal is not None:  # the same node alone: refused, saying why
        only = [n for n in nodes if n["metadata"]["name"] != expected]
        decision = place(r, only)
        assert decision.node is None and refusal in decision.message


def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


@pytest.mark.parametrize("affinity, expected", [
    (_required({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}), "b"),
    (_required({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["nowhere"]}]},
               {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}), "c"),
    (_required({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}), "c"),
    (_required({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}), "c"),
    ({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}}]}},
     "a"),
], ids=["required-in", "terms-are-ored-match-fields", "gt", "does-not-exist", "preferred-beats-load"])
def test_node_affinity(affinity: dict[str, Any], expected: str) -> None:
    nodes = [node("a", labels={"zone": "z1", "gen": "3"}), node("b", labels={"zone": "z2", "gen": "4"}),
             node("c", labels={"gen": "5"})]
    busy = {"a": [(vm("x"), 2.0, 4 << 30)]}  # a is the busiest: only a preference brings a VM there
    assert place(req(affinity=affinity), nodes, busy).node == expected


def _vm_terms(kind: str, mode: str, app: str, *, weight: int = 0) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": HOST}
    if mode == "preferred":
        return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": weight, "virtualMachineAndPodAffinityTerm": term}]}}
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def test_required_anti_affinity_keeps_two_apart_and_refuses_a_third_node_less() -> None:
    anti = _vm_terms("virtualMachineAndPodAntiAffinity", "required", "db")
    nodes = [node("a"), node("b", cpu="16", memory="64Gi")]  # b is far emptier: spreading alone would pick it twice
    first = req("db1", labels={"app": "db"}, affinity=anti)
    placed = {"b": [(first.vm, 1.0, 1 << 30)]}
    assert place(req("db2", labels={"app": "db"}, affinity=anti), nodes, placed).node == "a"
    placed["a"] = [(vm("db2", labels={"app": "db"}, affinity=anti), 1.0, 1 << 30)]
    third = place(req("db3", labels={"app": "db"}, affinity=anti), nodes, placed)
    assert third.node is None and "2 node(s) didn't match VM affinity rules" in third.message


def test_existing_vm_anti_affinity_is_symmetric() -> None:
    anti = _vm_terms("virtualMachineAndPodAntiAffinity", "required", "noisy")
    placed = {"b": [(vm("loner", affinity=anti), 1.0, 1 << 30)]}
    nodes = [node("a"), node("b", cpu="16", memory="64Gi")]
    assert place(req("noisy", labels={"app": "noisy"}), nodes, placed).node == "a"
    assert place(req("quiet", labels={"app": "quiet"}), nodes, placed).node == "b"


def test_required_affinity_follows_its_group_and_the_first_may_go_anywhere() -> None:
    aff = _vm_terms("virtualMachineAndPodAffinity", "required", "web")
    nodes = [node("a"), node("b", cpu="16", memory="64Gi")]
    assert place(req("web1", labels={"app": "web"}, affinity=aff), nodes).node == "b"
    placed = {"a": [(vm("web0", labels={"app": "web"}), 1.0, 1 << 30)]}
    assert place(req("web2", labels={"app": "web"}, affinity=aff), nodes, placed).node == "a"
    # a VM that is not of the group it asks for and finds none: nowhere
    lone = place(req("other", labels={"app": "api"}, affinity=aff), nodes)
    assert lone.node is None and "didn't match VM affinity rules" in lone.message


def test_affinity_looks_in_the_vms_namespace_only_unless_told() -> None:
    aff = _vm_terms("virtualMachineAndPodAntiAffinity", "required", "db")
    nodes = [node("a"), node("b", cpu="16", memory="64Gi")]
    placed = {"b": [(vm("db-other", ns="other", labels={"app": "db"}), 1.0, 1 << 30)]}
    assert place(req("db", labels={"app": "db"}, affinity=aff), nodes, placed).node == "b"
    everywhere = {"virtualMachineAndPodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": HOST, "namespaceSelector": {}}]}}
    assert place(req("db", labels={"app": "db"}, affinity=everywhere), nodes, placed).node == "a"


def test_a_namespace_selector_adds_the_namespaces_it_selects_to_those_listed() -> None:
    labels = {"team-a": {"tier": "prod"}, "team-b": {"tier": "dev"}, "team-c": {}}
    nodes = [node("a"), node("b"), node("c", cpu="16", memory="64Gi")]
    placed = {"a": [(vm("db-a", ns="team-a", labels={"app": "db"}), 1.0, 1 << 30)],
              "b": [(vm("db-b", ns="team-b", labels={"app": "db"}), 1.0, 1 << 30)],
              "c": [(vm("db-c", ns="team-c", labels={"app": "db"}), 1.0, 1 << 30)]}

    def anti(**scope: Any) -> dict[str, Any]:
        return {"virtualMachineAndPodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": HOST, **scope}]}}

    def where(**scope: Any) -> str | None:
        r = req("db", labels={"app": "db"}, affinity=anti(**scope))
        return decide(r, nodes, load=lambda n: (0.0, 0), placed={n: [p[0] for p in ps] for n, ps in placed.items()},
                      namespace_labels=lambda ns: labels.get(ns, {})).node

    prod = {"matchLabels": {"tier": "prod"}}
    assert where() == "c"  # only its own namespace (default): c is the emptiest
    assert where(namespaceSelector=prod) == "c"  # team-a's db on a is avoided
    assert where(namespaceSelector=prod, namespaces=["team-c"]) == "b"  # the union: a and c avoided
    assert where(namespaceSelector={"matchExpressions": [{"key": "tier", "operator": "Exists"}]}) == "c"
    assert where(namespaceSelector={}) is None  # every namespace: a db on every node


def test_namespace_labels_come_from_the_namespace_cache() -> None:
    from controlplane.common.kube.client import NAMESPACES

    other = _vm_obj("db-other")
    other["metadata"].update(namespace="prod", labels={"app": "db"})
    other["status"] = {"nodeName": "a"}
    anti = {"virtualMachineAndPodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": HOST,
         "namespaceSelector": {"matchLabels": {"env": "prod"}}}]}}
    mine = _vm_obj("db", affinity=anti)
    mine["metadata"]["labels"] = {"app": "db"}
    ctx = _ctx([node("a", cpu="16", memory="64Gi"), node("b")], [other, mine])
    ctx.informer(NAMESPACES)._apply({"type": "ADDED", "object": {"metadata": {"name": "prod",
                                                                             "labels": {"env": "prod"}}}})
    assert choose_node(State(ctx, VIRTUAL_MACHINES, mine), AssumedPlacements()).node == "b"


def test_preferred_vm_affinity_and_anti_affinity_weigh_in() -> None:
    nodes = [node("a"), node("b", cpu="16", memory="64Gi")]
    placed = {"a": [(vm("cache", labels={"app": "cache"}), 1.0, 1 << 30)]}
    near = _vm_terms("virtualMachineAndPodAffinity", "preferred", "cache", weight=100)
    assert place(req("app", affinity=near), nodes, placed).node == "a"
    far = _vm_terms("virtualMachineAndPodAntiAffinity", "preferred", "cache", weight=100)
    placed_b = {"b": [(vm("cache", labels={"app": "cache"}), 1.0, 1 << 30)]}
    assert place(req("app", affinity=far), [node("a"), node("b")], placed_b).node == "a"


def test_capacity_message_names_the_short_resource_and_the_free_room() -> None:
    nodes = [node("a", memory="2Gi"), node("b", cpu="1", memory="8Gi")]
    placed = {"a": [(vm("x"), 1.0, 2 << 30)], "b": [(vm("y"), 0.5, 1 << 30)]}
    decision = place(req(cpu=1, memory="1Gi"), nodes, placed)
    assert decision.node is None
    assert decision.message.startswith("0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.")
    assert "a: 3.00 cores, 0 memory free" in decision.message and set(decision.short) == {"cpu", "memory"}


@pytest.mark.parametrize("nodes, expect_node, words", [
    ([node("a"), node("b")], "b", None),
    ([node("a")], None, 'VirtualDisk "root" is provisioned on node b, which no longer exists'),
    ([node("a"), node("b", memory="512Mi")], None,
     'VirtualDisk "root" is provisioned on node b, which cannot run the machine now: 0/1 nodes are available: '
     '1 Insufficient memory.'),
], ids=["goes-to-its-disk", "disk-node-gone", "disk-node-full"])
def test_a_provisioned_disk_pins_the_vm(nodes: list[dict[str, Any]], expect_node: str | None,
                                        words: str | None) -> None:
    decision = place(req(pinned="b"), nodes, {"b": [(vm("x"), 3.0, 1 << 30)]})
    assert decision.node == expect_node
    if words:
        assert words in decision.message


def test_assumed_placements_expire_and_are_reused_by_the_same_vm() -> None:
    now = [0.0]
    assumed = AssumedPlacements(ttl=10, clock=lambda: now[0])
    assumed.assume(("ns", "vm"), node="a", cpu=1, memory=1, vm={})
    assert assumed.node_of(("ns", "vm")) == "a" and list(assumed.on_node("a")) == [("ns", "vm")]
    now[0] = 11
    assert assumed.node_of(("ns", "vm")) is None and not assumed.on_node("a")
    assumed.prune(lambda k, a: False)
    assert len(assumed) == 0


# -- choose_node over informer caches: simultaneous placements ---------------------------------------

def _ctx(nodes: list[dict[str, Any]], vms: list[dict[str, Any]]) -> Context:
    ctx = Context(kube=None, settings=PlatformSettings(), recorder=CollectedEvents())
    for resource, objs in ((NODES, nodes), (VIRTUAL_MACHINES, vms), (INSTANCES, []), (VOLUMES, [])):
        inf = ctx.informer(resource)
        for obj in objs:
            inf._apply({"type": "ADDED", "object": obj})
    return ctx


def _vm_obj(name: str, memory: str = "1Gi", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": name, "resourceVersion": "1"},
            "spec": {"cpu": {"cores": 1, "coreFraction": "100%"}, "memory": {"size": memory},
                     "virtualMachineClassName": "generic", **spec}, "status": {}}


def test_ten_vms_placed_at_once_on_room_for_eight_place_exactly_eight() -> None:
    nodes = [node("a", cpu="8", memory="4Gi"), node("b", cpu="8", memory="4Gi")]  # 4 x 1Gi each
    vms = [_vm_obj(f"vm{i}") for i in range(10)]
    ctx = _ctx(nodes, vms)
    assumed = AssumedPlacements()
    start = threading.Barrier(10)
    results: dict[str, Any] = {}

    def one(obj: dict[str, Any]) -> None:
        state = State(ctx, VIRTUAL_MACHINES, obj)
        start.wait()
        results[obj["metadata"]["name"]] = choose_node(state, assumed)
    threads = [threading.Thread(target=one, args=(o,)) for o in vms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    placed = [d.node for d in results.values() if d.node]
    assert len(placed) == 8 and placed.count("a") == 4 and placed.count("b") == 4
    pending = [d for d in results.values() if d.node is None]
    assert len(pending) == 2 and all(d.short == ("memory",) and "2 Insufficient memory" in d.message
                                     for d in pending)
    # the same VM asking again (its status write lost) keeps the node it was given
    name, decision = next((n, d) for n, d in results.items() if d.node)
    again = choose_node(State(ctx, VIRTUAL_MACHINES, next(v for v in vms if v["metadata"]["name"] == name)), assumed)
    assert again.node == decision.node


def test_placed_vms_and_a_provisioned_volume_are_read_from_the_caches() -> None:
    placed_vm = _vm_obj("old", memory="3Gi")
    placed_vm["status"] = {"nodeName": "a"}
    root = {"metadata": {"name": "root", "namespace": "default"}, "spec": {"nodeName": "b", "size": "1Gi"}}
    big = _vm_obj("big", memory="2Gi")
    pinned = _vm_obj("pinned", memory="3Gi", blockDeviceRefs=[{"kind": "VirtualDisk", "name": "root"}])
    ctx = _ctx([node("a", memory="4Gi"), node("b", memory="4Gi")], [placed_vm, big, pinned])
    ctx.informer(VOLUMES)._apply({"type": "ADDED", "object": root})
    fresh = AssumedPlacements()
    assert choose_node(State(ctx, VIRTUAL_MACHINES, big), fresh).node == "b"  # a has 1Gi left
    decision = choose_node(State(ctx, VIRTUAL_MACHINES, pinned), fresh)  # b now holds big (assumed)
    assert decision.node is None and decision.message.startswith(
        "VirtualDisk 'root' is provisioned on node b, which cannot run the machine now")


def test_a_placed_vms_required_anti_affinity_still_repels_a_vm_without_terms() -> None:
    """The VMs of every node are gathered only when a term can apply: an index of the VMs with a
    required anti-affinity term says when one can, though the incoming VM has none."""
    nodes = [node("a", cpu="16", memory="64Gi"), node("b")]
    plain = _vm_obj("web")
    plain["metadata"]["labels"] = {"app": "web"}
    assert choose_node(State(_ctx(nodes, [plain]), VIRTUAL_MACHINES, plain), AssumedPlacements()).node == "a"
    loner = _vm_obj("loner", affinity={"virtualMachineAndPodAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOST}]}})
    loner["status"] = {"nodeName": "a"}
    assert choose_node(State(_ctx(nodes, [loner, plain]), VIRTUAL_MACHINES, plain), AssumedPlacements()).node == "b"


def test_node_loads_follow_the_caches_as_a_scan_of_every_vm_would() -> None:
    """A node's load is a running sum kept from the VM and instance events (O(1) per placement):
    the instance's request wins on its node, a VM moved or deleted leaves its old node, millicores
    never drift, assumed placements are added once, and the VM being placed is left out."""
    from controlplane.controllers.scheduler.assumed import Assumption
    from controlplane.controllers.vm import nodeload
    from controlplane.controllers.vm.placement import requested

    def vm_on(name: str, node_name: str, cores: int = 1, fraction: str = "100%", memory: str = "1Gi") -> dict[str, Any]:
        obj = _vm_obj(name, memory=memory, cpu={"cores": cores, "coreFraction": fraction})
        obj["status"] = {"nodeName": node_name}
        return obj

    ctx = _ctx([node("a"), node("b")], [vm_on("seeded", "a")])
    vms, insts = ctx.informer(VIRTUAL_MACHINES), ctx.informer(INSTANCES)
    loads = nodeload.of(ctx, requested)
    assert nodeload.of(ctx, requested) is loads
    gi, none = 1 << 30, ("", "")

    def load(n: str, me: tuple[str, str] = none, assumed: dict[Any, Any] | None = None) -> tuple[float, int]:
        return loads.load(n, me=me, assumed=assumed or {})

    assert load("a") == (1.0, gi)  # what the cache held before the sums existed
    inst = {"metadata": {"name": "seeded", "namespace": "default"},
            "spec": {"nodeName": "a", "cpu": {"cores": 2}, "memory": {"size": "512Mi"}}}
    insts._apply({"type": "ADDED", "object": inst})
    assert load("a") == (2.0, 512 << 20)  # the instance's request wins on its node
    for i in range(20):
        vms._apply({"type": "ADDED", "object": vm_on(f"small{i}", "b", fraction="5%", memory="100Mi")})
    assert load("b") == (1.0, 2000 << 20)  # 20 x 0.05 cores, exactly
    vms._apply({"type": "MODIFIED", "object": vm_on("seeded", "b")})
    assert load("a") == (2.0, 512 << 20) and load("b") == (2.0, (2000 << 20) + gi)  # VM on b, instance on a
    insts._apply({"type": "DELETED", "object": inst})
    assert load("a") == (0.0, 0)
    assert load("b", me=("default", "seeded")) == (1.0, 2000 << 20)  # the VM being placed is not its own load
    assumed = {("default", "new"): Assumption("b", 0.5, gi, {}, 1e18),
               ("default", "seeded"): Assumption("b", 1.0, gi, {}, 1e18)}  # already counted from the cache
    assert load("b", assumed=assumed) == (2.5, (2000 << 20) + 2 * gi)
    vms._apply({"type": "DELETED", "object": vm_on("seeded", "b")})
    assert load("b") == (1.0, 2000 << 20)
