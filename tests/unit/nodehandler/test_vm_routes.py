"""The cross-host VM route reconciler against a fake ip layer: routes follow where VMs run
(start, stop, move, node loss), only routes with our tag are ever removed, a peer that is not
on a connected subnet gets no route and is named, and the kernel is only written on a change."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from controlplane.nodehandler.iproute import IpError, KernelRoute
from controlplane.nodehandler.vmroutes import RouteReconciler
from controlplane.nodehandler.vmroutes_plan import desired, diff

NET = ipaddress.IPv4Network("10.66.0.0/16")
ME, MY_IP = "node-a", "192.168.5.2"
PEERS = {"node-a": "192.168.5.2", "node-b": "192.168.5.3", "node-c": "192.168.5.4", "far": "172.20.0.9"}


class FakeIp:
    """The kernel as the reconciler sees it: our table's tagged routes, plus foreign ones it must keep."""

    def __init__(self) -> None:
        self.table: dict[str, KernelRoute] = {}
        self.foreign: dict[str, KernelRoute] = {}  # other software's routes (no tag): never listed, never touched
        self.writes: list[str] = []
        self.rule: ipaddress.IPv4Network | None = None
        self.bridge_ready: str | None = None
        self.fail_replace = False

    def routes(self) -> dict[str, KernelRoute]:
        return dict(self.table)

    def replace(self, route: KernelRoute) -> None:
        if self.fail_replace:
            raise IpError(f"`ip -4 route replace {route.dst}` failed: Nexthop has invalid gateway")
        self.writes.append(f"replace {route.dst} via {route.via}")
        self.table[route.dst] = route

    def delete(self, dst: str) -> None:
        self.writes.append(f"delete {dst}")
        del self.table[dst]

    def ensure_rule(self, vm_net: ipaddress.IPv4Network) -> None:
        self.rule = vm_net

    def on_link(self, address: str) -> bool:
        return ipaddress.IPv4Address(address) in ipaddress.IPv4Network("192.168.5.0/24")

    def prepare_bridge(self, bridge: str) -> None:
        self.bridge_ready = bridge

    def announce(self, bridge: str, address: str) -> None:
        self.writes.append(f"announce {address} on {bridge}")


def inst(name: str, ip: str, node: str, *, phase: str = "Running", status_node: str | None = None,
         deleting: bool = False, network: str = "default") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node, "nics": [{"name": "n0", "mac": "52:54:00:00:00:01", "ip": ip,
                                                                   "network": network}]},
            "status": {"phase": phase, "nodeName": status_node or node}}


def node(name: str, *, ready: str = "True") -> dict[str, Any]:
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "addresses": [{"type": "InternalIP", "address": PEERS[name]},
                                     {"type": "Hostname", "address": name}]}}


class FakeTunnel:
    device = "dvpvx0"

    def __init__(self) -> None:
        self.local: str | None = None
        self.held: set[str] = set()
        self.broken = False

    def ensure(self, local: str) -> None:
        if self.broken:
            raise IpError("`ip link add dvpvx0 type vxlan ...` failed: Unknown device type")
        self.local = local

    def peers(self) -> set[str]:
        return set(self.held)

    def add_peer(self, address: str) -> None:
        self.held.add(address)

    def remove_peer(self, address: str) -> None:
        self.held.discard(address)


class World:
    def __init__(self, *, mode: str = "auto", tunnel: FakeTunnel | None = None) -> None:
        self.instances: list[dict[str, Any]] = []
        self.nodes = [node(n) for n in PEERS]
        self.ip = FakeIp()
        self.tunnel = tunnel
        self.passes = 0
        self.rec = RouteReconciler(self.ip, me=ME, my_ip=MY_IP, vm_net=NET, bridge="dvpbr0",
                                   instances=lambda: self.instances, nodes=lambda: self.nodes, on_pass=self._bump,
                                   mode=mode, tunnel=tunnel)

    def _bump(self) -> None:
        self.passes += 1

    def routes(self) -> dict[str, str]:
        self.rec.reconcile()
        return {dst: r.via for dst, r in self.ip.table.items()}


@pytest.fixture
def world() -> World:
    return World()


def test_vm_on_another_node_is_routed_to_it_and_own_vms_are_not(world: World) -> None:
    world.instances = [inst("a1", "10.66.0.5", "node-a"), inst("b1", "10.66.0.6", "node-b"),
                       inst("c1", "10.66.1.7", "node-c")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3", "10.66.1.7/32": "192.168.5.4"}
    assert all(r.src == MY_IP for r in world.ip.table.values())
    assert world.ip.rule == NET and world.ip.bridge_ready == "dvpbr0"
    assert world.passes == 1  # DHCP bindings refreshed on every pass


@pytest.mark.parametrize("phase,routed", [("Pending", False), ("Starting", True), ("Running", True),
                                          ("Stopping", True), ("Stopped", False), ("Failed", False),
                                          ("Terminating", False)], ids=lambda v: str(v))
def test_only_a_vm_whose_domain_is_up_is_routed(world: World, phase: str, routed: bool) -> None:
    world.instances = [inst("b1", "10.66.0.6", "node-b", phase=phase)]
    assert bool(world.routes()) is routed


def test_stop_removes_the_route(world: World) -> None:
    world.instances = [inst("b1", "10.66.0.6", "node-b")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3"}
    world.instances = [inst("b1", "10.66.0.6", "node-b", phase="Stopped")]
    assert world.routes() == {}
    world.instances = []
    assert world.routes() == {}


def test_move_follows_the_node_the_handler_reports(world: World) -> None:
    world.instances = [inst("b1", "10.66.0.6", "node-b")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3"}
    # spec moved to node-c, but node-b still runs it (a migration before its switch-over)
    world.instances = [inst("b1", "10.66.0.6", "node-c", status_node="node-b")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3"}
    world.instances = [inst("b1", "10.66.0.6", "node-c")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.4"}
    world.instances = [inst("b1", "10.66.0.6", "node-a")]  # moved here: the bridge delivers it
    assert world.routes() == {}


def test_an_address_newly_routed_away_is_announced_on_the_bridge_once(world: World) -> None:
    world.instances = [inst("a1", "10.66.0.6", ME)]
    world.routes()
    world.instances = [inst("a1", "10.66.0.6", "node-b")]  # moved away from here
    world.routes()
    world.instances = [inst("a1", "10.66.0.6", "node-c")]  # on between two other nodes: VMs here already use us
    world.routes()
    assert world.ip.writes == ["replace 10.66.0.6/32 via 192.168.5.3", "announce 10.66.0.6 on dvpbr0",
                               "replace 10.66.0.6/32 via 192.168.5.4"]


def test_garp_frame_is_an_arp_reply_from_the_bridge() -> None:
    from controlplane.nodehandler.iproute import garp_frame

    frame = garp_frame(bytes.fromhex("02aabbccddee"), bytes([10, 66, 0, 6]))
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("02aabbccddee") and frame[12:14] == b"\x08\x06"
    assert frame[20:22] == b"\x00\x02" and frame[28:32] == frame[38:42] == bytes([10, 66, 0, 6])
    assert frame[22:28] == frame[32:38] == bytes.fromhex("02aabbccddee")  # a gratuitous reply: tha = sha
    assert len(frame) == 42


def test_node_loss_withdraws_its_routes_and_they_return_with_it(world: World) -> None:
    world.instances = [inst("b1", "10.66.0.6", "node-b"), inst("c1", "10.66.0.7", "node-c")]
    world.routes()
    world.nodes = [node("node-a"), node("node-b", ready="Unknown"), node("node-c")]
    assert world.routes() == {"10.66.0.7/32": "192.168.5.4"}
    world.nodes = [node("node-a"), node("node-c")]  # the Node deleted
    assert world.routes() == {"10.66.0.7/32": "192.168.5.4"}
    world.nodes = [node("node-a"), node("node-b"), node("node-c")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3", "10.66.0.7/32": "192.168.5.4"}


def test_stale_and_hand_changed_routes_are_put_right_and_foreign_ones_kept(world: World) -> None:
    world.ip.table["10.66.9.9/32"] = KernelRoute("10.66.9.9/32", "192.168.5.9", MY_IP)  # a VM gone while we were away
    world.ip.table["10.66.0.6/32"] = KernelRoute("10.66.0.6/32", "192.168.5.4", MY_IP)  # points at the old node
    world.ip.foreign["10.66.0.0/24"] = KernelRoute("10.66.0.0/24", "192.168.5.1")
    world.instances = [inst("b1", "10.66.0.6", "node-b")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3"}
    assert world.ip.foreign == {"10.66.0.0/24": KernelRoute("10.66.0.0/24", "192.168.5.1")}


def test_a_pass_without_changes_writes_nothing(world: World) -> None:
    world.instances = [inst("b1", "10.66.0.6", "node-b")]
    world.routes()
    world.ip.writes.clear()
    world.routes()
    world.routes()
    assert world.ip.writes == []


def test_peer_off_the_segment_gets_no_route_and_is_named(world: World) -> None:
    world.instances = [inst("f1", "10.66.0.8", "far"), inst("b1", "10.66.0.6", "node-b")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3"}
    assert "node far (172.20.0.9) is not on a subnet" in world.rec.last.unreachable["far"]


def test_kernel_refusal_is_reported_and_retried(world: World) -> None:
    world.instances = [inst("b1", "10.66.0.6", "node-b")]
    world.ip.fail_replace = True
    out = world.rec.reconcile()
    assert out.errors and "Nexthop has invalid gateway" in out.errors[0]
    world.ip.fail_replace = False
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3"}


def test_addresses_outside_the_vm_network_or_on_other_networks_are_ignored(world: World) -> None:
    world.instances = [inst("b1", "10.77.0.6", "node-b"), inst("b2", "10.66.0.9", "node-b", network="storage"),
                       inst("b3", "10.66.0.10", "node-b", deleting=True)]
    assert world.routes() == {}


def test_one_address_claimed_twice_is_routed_once_and_said() -> None:
    instances = [inst("x", "10.66.0.6", "node-b"), inst("y", "10.66.0.6", "node-c")]
    plan = desired(instances, [node(n) for n in PEERS], me=ME, vm_net=NET)
    assert {d: t.node for d, t in plan.routes.items()} == {"10.66.0.6/32": "node-b"}
    assert plan.conflicts == ["10.66.0.6 is claimed by running instances ns/x and ns/y; routing it to ns/x's node"]


def test_a_local_vm_shadows_a_remote_claim_of_its_address() -> None:
    instances = [inst("a", "10.66.0.6", ME), inst("z", "10.66.0.6", "node-b")]
    assert desired(instances, [node(n) for n in PEERS], me=ME, vm_net=NET).routes == {}


def test_diff_is_sorted_and_minimal() -> None:
    want = {d: KernelRoute(d, "192.168.5.3", MY_IP) for d in ("10.66.0.9/32", "10.66.0.2/32")}
    have = {"10.66.0.2/32": KernelRoute("10.66.0.2/32", "192.168.5.3", MY_IP),
            "10.66.0.1/32": KernelRoute("10.66.0.1/32", "192.168.5.3", MY_IP)}
    changes = diff(want, have)
    assert [r.dst for r in changes.replace] == ["10.66.0.9/32"] and changes.delete == ["10.66.0.1/32"]


def test_auto_mode_reaches_a_node_off_the_segment_through_the_tunnel() -> None:
    world = World(tunnel=FakeTunnel())
    world.instances = [inst("f1", "10.66.0.8", "far"), inst("b1", "10.66.0.6", "node-b")]
    world.rec.reconcile()
    assert world.ip.table == {
        "172.20.0.9/32": KernelRoute("172.20.0.9/32", "", MY_IP, "dvpvx0"),  # the peer itself, first
        "10.66.0.8/32": KernelRoute("10.66.0.8/32", "172.20.0.9", MY_IP, "dvpvx0"),
        "10.66.0.6/32": KernelRoute("10.66.0.6/32", "192.168.5.3", MY_IP),  # a neighbour: directly
    }
    assert world.ip.writes[0] == "replace 172.20.0.9/32 via "
    assert world.tunnel is not None and world.tunnel.held == {"172.20.0.9"} and world.tunnel.local == MY_IP
    world.nodes = [node(n) for n in PEERS if n != "far"]  # the far node is gone: its peer entry and routes go
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3"}
    assert world.tunnel.held == set()


def test_vxlan_mode_tunnels_neighbours_too_and_direct_mode_never() -> None:
    world = World(mode="vxlan", tunnel=FakeTunnel())
    world.instances = [inst("b1", "10.66.0.6", "node-b")]
    world.rec.reconcile()
    assert world.ip.table["10.66.0.6/32"].dev == "dvpvx0"
    assert world.tunnel is not None and world.tunnel.held == {"192.168.5.3", "192.168.5.4", "172.20.0.9"}
    direct = World(mode="direct")
    direct.instances = [inst("f1", "10.66.0.8", "far")]
    assert direct.routes() == {"10.66.0.8/32": "172.20.0.9"}  # as told: the kernel may refuse it


def test_tunnel_that_cannot_come_up_is_said_and_neighbours_still_work() -> None:
    tunnel = FakeTunnel()
    tunnel.broken = True
    world = World(tunnel=tunnel)
    world.instances = [inst("f1", "10.66.0.8", "far"), inst("b1", "10.66.0.6", "node-b")]
    assert world.routes() == {"10.66.0.6/32": "192.168.5.3"}
    assert "Unknown device type" in world.rec.last.errors[0]
    assert "the VXLAN tunnel to it is not up" in world.rec.last.unreachable["far"]


def test_no_tunnel_device_while_every_node_is_a_neighbour() -> None:
    world = World(tunnel=FakeTunnel())
    world.instances = [inst("b1", "10.66.0.6", "node-b")]
    world.nodes = [node(n) for n in PEERS if n != "far"]
    world.routes()
    assert world.tunnel is not None and world.tunnel.local is None


def test_the_loop_acts_on_a_poke_and_resyncs_rules_deleted_by_hand(world: World) -> None:
    import time

    world.rec.resync_every = 0.3
    world.rec.start()
    try:
        world.instances = [inst("b1", "10.66.0.6", "node-b")]
        world.rec.poke()
        deadline = time.monotonic() + 5
        while "10.66.0.6/32" not in world.ip.table and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "10.66.0.6/32" in world.ip.table
        world.ip.rule = None  # someone deleted our rule
        while world.ip.rule is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert world.ip.rule == NET
    finally:
        world.rec.stop()


def test_a_vm_that_moved_is_routed_at_once_while_other_events_settle_first(world: World) -> None:
    """A live migration's switch-over (status.nodeName from one node to another) skips the settle
    that gathers bursts: the guest already runs on the target and answers once the routes follow."""
    import time

    world.rec.settle = 30.0  # a pass before it ends is the move's doing
    here = inst("b1", "10.66.0.6", "node-a")
    unplaced = {**here, "status": {"phase": "Pending", "nodeName": ""}}
    world.rec.start()
    try:
        world.instances = [here]
        world.rec.poke("MODIFIED", here, unplaced)  # placed for the first time: settles as ever
        time.sleep(0.2)
        assert world.passes == 0
        moved = inst("b1", "10.66.0.6", "node-b")
        world.instances = [moved]
        world.rec.poke("MODIFIED", moved, here)
        deadline = time.monotonic() + 5
        while "10.66.0.6/32" not in world.ip.table and time.monotonic() < deadline:
            time.sleep(0.01)
        assert world.ip.table["10.66.0.6/32"].via == PEERS["node-b"]
    finally:
        world.rec.stop()
