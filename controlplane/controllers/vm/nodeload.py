"""What the VMs on each node ask for (CPU and memory), kept as running sums from the VM and
instance caches' events, so placing a VM reads a node's load in O(1) — summing the requests of
every VM of every node at each placement made it O(VMs), the largest cost of a VM's create ->
Running at a few thousand VMs.

A VM counts on the node of its `status.nodeName` with its own request, and on the node of its
instance (`spec.nodeName`) with the instance's request, which wins where both name the same
node (as `placement.NodeView` read them before). CPU is summed in millicores, so sums that go
up and down for hours never drift. Placements assumed but not yet in the cache are added by the
caller (`load`), and the VM being placed is left out of its own view.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINES
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.scheduler.assumed import Assumption, Key

Requested = Callable[[dict[str, Any]], tuple[float, int]]
Part = tuple[str, int, int]  # node, millicores, memory bytes


def _milli(cpu: float) -> int:
    return round(cpu * 1000)


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class NodeLoads:
    """Per node, the summed requests of the VMs counted there; fed by the informers' events."""

    def __init__(self, ctx: Context, requested: Requested) -> None:
        self._requested = requested
        self._lock = threading.Lock()
        self._vm: dict[Key, Part] = {}
        self._inst: dict[Key, Part] = {}
        self._sums: dict[str, tuple[int, int]] = {}
        for resource, parts, node_of in ((VIRTUAL_MACHINES, self._vm, _vm_node), (INSTANCES, self._inst, _inst_node)):
            informer = ctx.informer(resource)

            def on_event(typ: str, obj: dict[str, Any], _old: dict[str, Any] | None,
                         parts: dict[Key, Part] = parts, node_of: Callable[[dict[str, Any]], str] = node_of) -> None:
                self._set(parts, _key(obj), None if typ == "DELETED" else self._part(obj, node_of(obj)))

            informer.add_handler(on_event)  # before reading the cache: no event falls in between
            for obj in informer.list():  # setting a part is idempotent, so an event seen twice is harmless
                self._set(parts, _key(obj), self._part(obj, node_of(obj)))

    def _part(self, obj: dict[str, Any], node: str) -> Part | None:
        if not node:
            return None
        cpu, memory = self._requested(obj.get("spec") or {})
        return node, _milli(cpu), memory

    def _counted(self, key: Key) -> dict[str, tuple[int, int]]:
        """Where `key` counts and with what (called under the lock)."""
        out: dict[str, tuple[int, int]] = {}
        for part in (self._vm.get(key), self._inst.get(key)):  # the instance's request wins on its node
            if part is not None:
                out[part[0]] = (part[1], part[2])
        return out

    def _set(self, parts: dict[Key, Part], key: Key, part: Part | None) -> None:
        with self._lock:
            before = self._counted(key)
            if part is None:
                parts.pop(key, None)
            else:
                parts[key] = part
            after = self._counted(key)
            for node, (cpu, mem) in before.items():
                total = self._sums.get(node, (0, 0))
                self._sums[node] = (total[0] - cpu, total[1] - mem)
            for node, (cpu, mem) in after.items():
                total = self._sums.get(node, (0, 0))
                self._sums[node] = (total[0] + cpu, total[1] + mem)

    def load(self, node: str, *, me: Key, assumed: Mapping[Key, Assumption]) -> tuple[float, int]:
        """(CPU cores, memory bytes) the VMs on `node` ask for, placements assumed there included,
        the VM `me` left out."""
        with self._lock:
            cpu, mem = self._sums.get(node, (0, 0))
            mine = self._counted(me).get(node)
            if mine is not None:
                cpu, mem = cpu - mine[0], mem - mine[1]
            for key, a in assumed.items():
                if key != me and node not in self._counted(key):
                    cpu, mem = cpu + _milli(a.cpu), mem + a.memory
        return cpu / 1000, mem


def _vm_node(vm: dict[str, Any]) -> str:
    return str((vm.get("status") or {}).get("nodeName") or "")


def _inst_node(inst: dict[str, Any]) -> str:
    return str((inst.get("spec") or {}).get("nodeName") or "")


_CREATING = threading.Lock()


def of(ctx: Context, requested: Requested) -> NodeLoads:
    """The NodeLoads of this manager's caches (made on first use)."""
    with _CREATING:
        loads = ctx.shared.get("nodeloads")
        if loads is None:
            loads = ctx.shared["nodeloads"] = NodeLoads(ctx, requested)
        assert isinstance(loads, NodeLoads)
        return loads
