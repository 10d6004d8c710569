"""Placing a VirtualMachine on a node: the VM controller's side of the scheduler
(`controllers.scheduler`), which decides from what this module gathers out of the caches.

- the request: the VM's CPU (cores x coreFraction) and memory, the class's and the VM's
  `nodeSelector`, their tolerations, the VM's affinity, and the node a provisioned VirtualDisk
  pins it to (local storage: the disk lives on that node), else the node its first usable USB
  device is plugged into;
- the load of a node: the VMs placed there (`status.nodeName`), their instances, summed as the
  caches change (`nodeload.py`: O(1) per placement), and the placements assumed but not yet in
  the cache — the decision and its assumption are taken under one lock, so VMs placed at the
  same instant never over-commit a node;
- once placed, a VM stays on its node (its disks live there);
- the VMs of every node (for VM affinity) are gathered only when the VM has an affinity term
  or some VM has a required anti-affinity term (an index counts those).
"""

from __future__ import annotations

from typing import Any

from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINE_CLASSES, VIRTUAL_MACHINES, VOLUMES
from controlplane.common import quantity
from controlplane.common.kube.client import NAMESPACES, NODES
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.state import State
from controlplane.controllers.scheduler.assumed import AssumedPlacements, Assumption, Key
from controlplane.controllers.scheduler.decide import Decision, Request, decide
from controlplane.controllers.scheduler.vmaffinity import (
    AFFINITY,
    ANTI_AFFINITY,
    REQUIRED,
    Placed,
    placed_of,
)
from controlplane.controllers.vm import nodeload
from controlplane.controllers.vm.usb import device_node

VMS_BY_NODE = indexes.Index(VIRTUAL_MACHINES, "scheduledNode",
                            lambda vm: [n] if (n := (vm.get("status") or {}).get("nodeName")) else [])
"""VMs by the node they are placed on (`status.nodeName`): a node's load without a scan."""
VMS_WITH_REQUIRED_ANTI_AFFINITY = indexes.Index(
    VIRTUAL_MACHINES, "requiredAntiAffinity",
    lambda vm: ["true"] if (((vm.get("spec") or {}).get("affinity") or {}).get(ANTI_AFFINITY) or {}).get(REQUIRED)
    else [])
"""VMs with a required anti-affinity term: the only placed VMs that can refuse an incoming VM
without a term of its own (while there are none, its placement never looks at the others)."""


def requested(spec: dict[str, Any]) -> tuple[float, int]:
    """(CPU cores, memory bytes) a VM asks of its node (cores x coreFraction)."""
    cpu = spec.get("cpu") or {}
    fraction = str(cpu.get("coreFraction") or "100%").rstrip("%")
    frac = 1.0 if fraction in ("", "Auto") else int(fraction) / 100
    mem = quantity.to_bytes((spec.get("memory") or {}).get("size") or 0)
    return int(cpu.get("cores") or 1) * frac, mem


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def pinned_node(state: State) -> tuple[str | None, str]:
    """The node a VirtualDisk of the VM is provisioned on, and which disk it is; else the node
    its first usable USB device is plugged into (vm/usb.py)."""
    for ref in state.spec.get("blockDeviceRefs") or []:
        if ref.get("kind") != "VirtualDisk" or not ref.get("name"):
            continue
        volume = state.get(VOLUMES, ref["name"])
        node = ((volume or {}).get("spec") or {}).get("nodeName")
        if node:
            return str(node), f"VirtualDisk {ref['name']!r}"
    return device_node(state)


class NodeView:
    """What the scheduler sees of each node: the VMs there (placed, instantiated, assumed) and their load."""

    def __init__(self, state: State, assumed: AssumedPlacements) -> None:
        self.state = state
        self.assumed = assumed
        self.me = (state.namespace, state.name)
        self._memo: dict[str, dict[Key, tuple[float, int, dict[str, Any]]]] = {}

    def on(self, node: str) -> dict[Key, tuple[float, int, dict[str, Any]]]:
        """(cpu, memory, VM object) per VM on `node`, this VM excepted."""
        if node not in self._memo:
            found: dict[Key, tuple[float, int, dict[str, Any]]] = {}
            for key, a in self.assumed.on_node(node).items():
                found[key] = (a.cpu, a.memory, a.vm)
            for vm in self.state.lookup(VMS_BY_NODE, node):
                found[_key(vm)] = (*requested(vm.get("spec") or {}), vm)
            for inst in self.state.lookup(indexes.INSTANCES_BY_NODE, node):
                key = _key(inst)
                vm = found.get(key, (0.0, 0, {"metadata": inst.get("metadata") or {}}))[2]
                found[key] = (*requested(inst.get("spec") or {}), vm)
            found.pop(self.me, None)
            self._memo[node] = found
        return self._memo[node]

    def load(self, node: str) -> tuple[float, int]:
        """In O(placements assumed): the sums `nodeload` keeps from the caches' events."""
        return nodeload.of(self.state.ctx, requested).load(node, me=self.me, assumed=self.assumed.on_node(node))

    def placed(self, nodes: list[dict[str, Any]]) -> dict[str, list[Placed]]:
        return {n["metadata"]["name"]: [placed_of(e[2]) for e in self.on(n["metadata"]["name"]).values()]
                for n in nodes}


def _settled(state: State) -> Any:
    def settled(key: Key, a: Assumption) -> bool:
        vm = state.ctx.cached(VIRTUAL_MACHINES, *key)
        if vm is None:
            return True
        return bool((vm.get("status") or {}).get("nodeName")) or state.ctx.cached(INSTANCES, *key) is not None
    return settled


def request_of(state: State) -> Request:
    spec = state.spec
    cls = state.get(VIRTUAL_MACHINE_CLASSES, spec.get("virtualMachineClassName", "")) or {}
    cls_spec = cls.get("spec") or {}
    cpu, mem = requested(spec)
    pinned, pinned_by = pinned_node(state)
    return Request(vm=placed_of(state.changed), spec=spec, cpu=cpu, memory=mem,
                   selectors=[cls_spec.get("nodeSelector"), spec.get("nodeSelector")],
                   tolerations=[*(cls_spec.get("tolerations") or []), *(spec.get("tolerations") or [])],
                   pinned=pinned, pinned_by=pinned_by)


def choose_node(state: State, assumed: AssumedPlacements) -> Decision:
    """A node for the VM (recorded as assumed until the cache shows it), or None and why none fits."""
    key = (state.namespace, state.name)
    with assumed.deciding():
        assumed.prune(_settled(state))
        again = assumed.node_of(key)
        if again is not None:
            return Decision(again)
        req = request_of(state)
        nodes = state.list(NODES)
        view = NodeView(state, assumed)
        # which VMs are where matters to affinity only: built when a term can apply (O(VMs) otherwise)
        terms = bool(req.vm.affinity.get(AFFINITY) or req.vm.affinity.get(ANTI_AFFINITY)) or \
            indexes.count(state.ctx, VMS_WITH_REQUIRED_ANTI_AFFINITY, "true") > 0
        decision = decide(req, nodes, load=view.load, placed=view.placed(nodes) if terms else {},
                          namespace_labels=lambda ns: ((state.get(NAMESPACES, ns) or {}).get("metadata") or {})
                          .get("labels") or {})
        if decision.node is not None:
            assumed.assume(key, node=decision.node, cpu=req.cpu, memory=req.memory,
                           vm={"metadata": state.changed["metadata"], "spec": state.spec})
        return decision
