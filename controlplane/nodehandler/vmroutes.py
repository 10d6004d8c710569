"""The cross-host VM route reconciler of one node (DVP's `vm-route-forge` idea): every VM
address of `virtualMachineCIDRs` that runs on another node is routed, as a /32, to that node's
InternalIP, in a routing table of our own (a policy rule sends the VM network there) with our
own protocol tag. A node that is a layer-2 neighbour is reached directly (`via` its address);
one that is not, through a VXLAN tunnel (vxlan.py), unless `vm-route-mode` says otherwise.
docs/network.md describes the whole design.

Level-triggered: any change to an instance (of any node) or a Node marks the routes dirty; one
thread then reads the desired routes from the caches (vmroutes_plan.py), the kernel's from our
table (iproute.py), and replaces or deletes the difference; it also runs every `resync_every`
seconds, so a route someone deleted by hand, or a change missed while the API was away, is
put right. It never touches a route without our tag. The same pass gives dnsmasq the MAC -> IP
bindings of the VMs this node runs, so DHCP is answered wherever a VM runs now.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.common.kube.client import NODES
from controlplane.common.kube.informer import Informer
from controlplane.nodehandler.context import INSTANCES, NodeContext
from controlplane.nodehandler.iproute import IpError, IpLayer, KernelIp, KernelRoute
from controlplane.nodehandler.prepare import bindings
from controlplane.nodehandler.vmroutes_plan import Changes, desired, diff, node_addresses
from controlplane.nodehandler.vxlan import KernelTunnel, TunnelLayer

log = logging.getLogger(__name__)

Lister = Callable[[], list[dict[str, Any]]]


@dataclass
class Outcome:
    """What one pass did and what it could not do (kept for status and tests)."""

    changes: Changes = field(default_factory=Changes)
    unreachable: dict[str, str] = field(default_factory=dict)
    """node -> why its VMs get no route from here."""
    errors: list[str] = field(default_factory=list)


class RouteReconciler:
    def __init__(self, ip: IpLayer, *, me: str, my_ip: str, vm_net: ipaddress.IPv4Network, bridge: str,
                 instances: Lister, nodes: Lister, on_pass: Callable[[], None] | None = None,
                 resync_every: float = 30.0, mode: str = "auto", tunnel: TunnelLayer | None = None) -> None:
        self.ip = ip
        self.mode = mode
        self.tunnel = tunnel
        self.me = me
        self.my_ip = my_ip
        self.vm_net = vm_net
        self.bridge = bridge
        self.instances = instances
        self.nodes = nodes
        self.on_pass = on_pass
        self.resync_every = resync_every
        self.settle = 0.1
        self.last = Outcome()
        self._dirty = threading.Event()
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prepared = False
        self._said: set[str] = set()  # warnings already logged, so a resync does not repeat them

    # -- one pass ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """The rules and the sysctls the routes rely on (idempotent; before the first pass, each pass
        until it works, and each resync, so a rule deleted by hand comes back)."""
        self.ip.prepare_bridge(self.bridge)
        self.ip.ensure_rule(self.vm_net)
        self._prepared = True

    def reconcile(self) -> Outcome:
        out = Outcome()
        try:
            if not self._prepared:
                self.prepare()
        except IpError as exc:
            out.errors.append(str(exc))
        nodes = self.nodes()
        plan = desired(self.instances(), nodes, me=self.me, vm_net=self.vm_net)
        for text in plan.conflicts:
            self._warn(text)
        peers = {ip for name, ip in node_addresses(nodes).items() if name != self.me and ip != self.my_ip}
        off_segment = {ip for ip in peers if not self._adjacent(ip, out)}
        tunneled = self._sync_tunnel(off_segment, out) if self.tunnel is not None else set()
        want: dict[str, KernelRoute] = {}
        if self.tunnel is not None:  # a peer itself through the tunnel: for its VMs' gateway and our VMs' answers
            dev = self.tunnel.device
            want.update({f"{ip}/32": KernelRoute(f"{ip}/32", "", self.my_ip, dev) for ip in tunneled})
        for dst, target in plan.routes.items():
            if target.via not in off_segment:
                want[dst] = KernelRoute(dst=dst, via=target.via, src=self.my_ip)
            elif self.tunnel is not None and target.via in tunneled:
                want[dst] = KernelRoute(dst=dst, via=target.via, src=self.my_ip, dev=self.tunnel.device)
            else:
                out.unreachable[target.node] = (
                    f"node {target.node} ({target.via}) is not on a subnet of this host's interfaces"
                    + (" and the VXLAN tunnel to it is not up (see the errors above)" if self.tunnel is not None else
                       ", and vm-route-mode is direct")
                    + f": its VMs are not routed from {self.me}")
        for why in out.unreachable.values():
            self._warn(why)
        try:
            have = self.ip.routes()
        except IpError as exc:
            out.errors.append(str(exc))
            self.last = out
            return out
        out.changes = diff(want, have)
        for route in out.changes.replace:
            try:
                self.ip.replace(route)
                vm = plan.routes.get(route.dst)
                if vm is None:
                    log.info("route to peer %s through %s", route.dst, route.dev)
                    continue
                log.info("VM route %s via %s%s (node %s)", route.dst, route.via,
                         f" through {route.dev}" if route.dev else "", vm.node)
                if route.dst not in have:  # it may have run here a moment ago: VMs here may hold its own MAC
                    self.ip.announce(self.bridge, route.dst.split("/")[0])
            except IpError as exc:
                out.errors.append(str(exc))
        for dst in out.changes.delete:
            try:
                self.ip.delete(dst)
                log.info("VM route %s removed (was via %s)", dst, have[dst].via)
            except IpError as exc:
                out.errors.append(str(exc))
        for text in out.errors:
            log.warning("VM routes: %s", text)
        if self.on_pass is not None:
            try:
                self.on_pass()
            except Exception as exc:  # dnsmasq bindings: the next pass tries again
                out.errors.append(f"DHCP bindings: {exc}")
                log.warning("VM routes: refreshing the DHCP bindings failed: %s", exc)
        self.last = out
        return out

    def _adjacent(self, address: str, out: Outcome) -> bool:
        if self.mode == "direct":
            return True
        if self.mode == "vxlan":
            return False
        try:
            return self.ip.on_link(address)
        except IpError as exc:
            out.errors.append(str(exc))
            return True

    def _sync_tunnel(self, wanted: set[str], out: Outcome) -> set[str]:
        """The tunnel's peers made exactly `wanted`; returns the peers it holds now."""
        assert self.tunnel is not None
        try:
            if wanted:
                self.tunnel.ensure(self.my_ip)
            have = self.tunnel.peers()  # none (and no device) when no node was ever off the segment
        except IpError as exc:
            out.errors.append(str(exc))
            return set()
        for ip in sorted(wanted - have):
            try:
                self.tunnel.add_peer(ip)
                have.add(ip)
                log.info("VXLAN peer %s added", ip)
            except IpError as exc:
                out.errors.append(str(exc))
        for ip in sorted(have - wanted):
            try:
                self.tunnel.remove_peer(ip)
                have.discard(ip)
                log.info("VXLAN peer %s removed", ip)
            except IpError as exc:
                out.errors.append(str(exc))
        return have & wanted

    def _warn(self, text: str) -> None:
        if text not in self._said:
            self._said.add(text)
            log.warning("VM routes: %s", text)

    # -- the loop --------------------------------------------------------------------------------
    def poke(self, _type: str = "", obj: dict[str, Any] | None = None, old: dict[str, Any] | None = None) -> None:
        """Mark the routes dirty (an informer handler: any instance or Node event). An instance whose
        `status.nodeName` changed (a live migration's switch-over: the guest runs on the target
        already and answers only once the routes follow) starts the pass at once, without the
        settle that gathers bursts (a VM placed for the first time, or stopped, waits as any event)."""
        if obj is not None and old is not None and _node_of(old) and _node_of(obj) not in (None, "", _node_of(old)):
            self._urgent.set()
        self._dirty.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vm-routes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._urgent.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._dirty.wait(self.resync_every):
                self._prepared = False  # a resync checks the rules and sysctls again too
            else:  # events come in bursts (many VMs started at once): one pass for them, unless a VM moved
                self._urgent.wait(self.settle)
            self._dirty.clear()
            self._urgent.clear()
            if self._stop.is_set():
                return
            try:
                self.reconcile()
            except Exception:
                log.exception("VM route pass failed")


def _node_of(obj: dict[str, Any]) -> Any:
    return (obj.get("status") or {}).get("nodeName")


class NodeRoutes:
    """The reconciler wired to a node handler: cluster-wide caches of instances and Nodes (the
    node's own instance cache only holds its own), the kernel, and dnsmasq's bindings."""

    def __init__(self, ctx: NodeContext, *, node_ip: str) -> None:
        c = ctx.config
        self.instances = Informer(ctx.kube, INSTANCES)
        self.nodes = Informer(ctx.kube, NODES)
        self.reconciler = RouteReconciler(
            KernelIp(table=c.route_table, protocol=c.route_protocol, rule_priority=c.route_rule_priority),
            me=c.node_name, my_ip=node_ip, vm_net=c.network, bridge=c.bridge,
            instances=self.instances.list, nodes=self.nodes.list,
            on_pass=lambda: ctx.network.set_bindings(bindings(ctx)),
            resync_every=ctx.runtime.sweep_every, mode=c.vm_route_mode,
            tunnel=None if c.vm_route_mode == "direct" else KernelTunnel())
        for inf in (self.instances, self.nodes):
            inf.add_handler(self.reconciler.poke)

    def start(self) -> None:
        for inf in (self.instances, self.nodes):
            inf.start()
        for inf in (self.instances, self.nodes):
            if not inf.wait_synced(30):
                raise TimeoutError(f"no list of {inf.resource.plural} within 30 s")
        self.reconciler.start()
        self.reconciler.poke()

    def stop(self) -> None:
        self.reconciler.stop()
        for inf in (self.instances, self.nodes):
            inf.stop()
