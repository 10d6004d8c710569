"""What the cross-host VM routes of one node should be, computed from the API alone (pure
functions, no kernel): `desired()` maps every VM address that runs on *another* Ready node to
that node's InternalIP; `diff()` compares that with what the kernel holds in our table.

Where a VM runs is what its node handler last reported: the instance's `status.nodeName`
(falling back to `spec.nodeName`) while `status.phase` says its domain is up (Starting,
Running, Stopping). A stopped, failed, pending or terminating instance has no route; a VM whose
node changes (a move, a live migration once its target reports) gets its route to the new
node. A node that is not Ready (lost, partitioned, libvirt down long enough for the Lease to
lapse) or has no InternalIP gets no routes: a VM there is unreachable anyway, and keeping a
route to it would leave a stale one when the VM comes up elsewhere. VMs of this node need no
route: the bridge's connected subnet delivers them. How a route reaches its node (directly, or
through the tunnel when the node is not a layer-2 neighbour) is vmroutes.py's decision.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from controlplane.api.internal import InstancePhase, node_internal_ip
from controlplane.nodehandler.iproute import KernelRoute

UP_PHASES = frozenset({InstancePhase.STARTING, InstancePhase.RUNNING, InstancePhase.STOPPING})


@dataclass(frozen=True)
class Target:
    """Where one VM address goes: the node that runs it, its address, and who holds the IP."""

    node: str
    via: str
    owner: str  # namespace/name of the instance


@dataclass
class Desired:
    routes: dict[str, Target] = field(default_factory=dict)
    """dst (`a.b.c.d/32`) -> target, for VMs running on other Ready nodes."""
    conflicts: list[str] = field(default_factory=list)
    """Addresses claimed by two running instances: the message says which (the first by name wins)."""


def node_addresses(nodes: Iterable[dict[str, Any]]) -> dict[str, str]:
    """name -> InternalIP of every Ready node."""
    out: dict[str, str] = {}
    for node in nodes:
        status = node.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        ip = node_internal_ip(node)
        if ready and ip:
            out[str((node.get("metadata") or {}).get("name"))] = str(ip)
    return out


def running_node(obj: dict[str, Any]) -> str | None:
    """The node whose domain of this instance is up, or None when it runs nowhere."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") not in UP_PHASES:
        return None
    node = status.get("nodeName") or spec.get("nodeName")
    return str(node) if node else None


def vm_addresses(obj: dict[str, Any], vm_net: ipaddress.IPv4Network) -> list[str]:
    """The instance's addresses on the default VM network that lie in `vm_net`."""
    out = []
    for nic in (obj.get("spec") or {}).get("nics") or []:
        ip = nic.get("ip")
        if not ip or (nic.get("network") or "default") != "default":
            continue
        try:
            if ipaddress.IPv4Address(str(ip)) in vm_net:
                out.append(str(ip))
        except ValueError:
            continue
    return out


def desired(instances: Iterable[dict[str, Any]], nodes: Iterable[dict[str, Any]], *, me: str,
            vm_net: ipaddress.IPv4Network) -> Desired:
    addrs = node_addresses(nodes)
    result = Desired()
    taken: dict[str, str] = {}  # ip -> owner, mine included (a local VM's address is never routed away)
    ordered = sorted(instances, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"].get("name", "")))
    for obj in ordered:
        node = running_node(obj)
        if node is None:
            continue
        owner = f"{obj['metadata'].get('namespace', '')}/{obj['metadata'].get('name', '')}"
        for ip in vm_addresses(obj, vm_net):
            if ip in taken:
                result.conflicts.append(f"{ip} is claimed by running instances {taken[ip]} and {owner}; "
                                        f"routing it to {taken[ip]}'s node")
                continue
            taken[ip] = owner
            if node != me and node in addrs:
                result.routes[f"{ip}/32"] = Target(node=node, via=addrs[node], owner=owner)
    return result


@dataclass
class Changes:
    replace: list[KernelRoute] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.replace or self.delete)


def diff(want: dict[str, KernelRoute], have: dict[str, KernelRoute]) -> Changes:
    """What makes the kernel's routes of our table exactly `want`: routes to peers themselves (no
    gateway) first, since tunnel routes name a peer as their on-link gateway; sorted, for stable logs."""
    out = Changes()
    for dst in sorted(want, key=lambda d: (bool(want[d].via), d)):
        if not want[dst].satisfied_by(have.get(dst)):
            out.replace.append(want[dst])
    out.delete = sorted(dst for dst in have if dst not in want)
    return out
