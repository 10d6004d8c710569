"""Empty a node of its VMs, live: the one drain both `dvp node drain NODE` (controlplane/cli/node.py)
and `dvp upgrade --reboot` (installer/upgrade/reboot.py) run. It lives in `common` because the
installer may not import `controlplane.api`: the two kinds it needs are named here (a unit test
checks they equal `controlplane.api.resources`).

Drain: cordon the node (`spec.unschedulable`, so nothing new lands there and no migration
targets it), then one Evict operation per VM running there — the VMOP controller queues them
within DVP's limits (one out per node: they leave one after another) and moves each live. A VM
that cannot move (condition Migratable False: a local ISO CD-ROM, a host device) is named with
the reason and fails the drain, unless `--force-stop`, which stops it instead. The progress
callback sees every VM's state as it changes; the result lists each VM's outcome. A watch on
the operations wakes the drain as soon as one changes (a migration ends, the next queued one
starts); it also looks every `poll` seconds, so a watch that breaks only slows it.

`prefer` (a Node label selector, e.g. the upgraded nodes' handler version) turns each Evict into
a Migrate with `spec.migrate.nodeSelector`, so the VMs land only on nodes it selects; the caller
passes it only when such a node is Ready and schedulable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from controlplane.common.kube.client import NODES, KubeClient, Resource

GROUP, VERSION = "virtualization.deckhouse.io", "v1alpha2"
VIRTUAL_MACHINES = Resource(GROUP, VERSION, "virtualmachines", "VirtualMachine")
VIRTUAL_MACHINE_OPERATIONS = Resource(GROUP, VERSION, "virtualmachineoperations", "VirtualMachineOperation")

FINAL = ("Completed", "Failed", "Superseded")
MOVES = ("Evict", "Migrate")
SETTLE = 10.0
"""Seconds a completed move's VM is given to show its new node in its status (the drain then
reports no target rather than wait on: a VM stopped right after its move has none)."""


@dataclass
class VMDrain:
    namespace: str
    name: str
    action: str  # Evict | Migrate (to preferred nodes) | Stop | None (cannot move)
    operation: str = ""
    phase: str = "Pending"
    message: str = ""
    target: str = ""
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return self.phase in FINAL or self.action == "None"

    @property
    def ok(self) -> bool:
        return self.phase == "Completed"


@dataclass
class DrainResult:
    node: str
    vms: list[VMDrain]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.vms)

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "ok": self.ok, "seconds": round(self.seconds, 1),
                "vms": [{k: v for k, v in asdict(vm).items() if k != "started"} for vm in self.vms]}


def cordon(kube: KubeClient, node: str, unschedulable: bool = True) -> None:
    kube.patch(NODES, node, {"spec": {"unschedulable": unschedulable or None}})


def vms_on(kube: KubeClient, node: str) -> list[dict[str, Any]]:
    return [vm for vm in kube.list(VIRTUAL_MACHINES).get("items", [])
            if (vm.get("status") or {}).get("nodeName") == node
            and (vm.get("status") or {}).get("phase") not in ("Stopped", "Pending", "Terminating", None)]


def not_migratable(vm: dict[str, Any]) -> str | None:
    for cond in (vm.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Migratable" and cond.get("status") == "False":
            return str(cond.get("message") or cond.get("reason") or "not migratable")
    return None


def _operation(kube: KubeClient, vm: VMDrain, *, force: bool, prefer: dict[str, str] | None = None) -> str:
    extra: dict[str, Any] = {"force": True} if force else {}
    if vm.action == "Migrate" and prefer:
        extra["migrate"] = {"nodeSelector": dict(prefer)}
    op = kube.create(VIRTUAL_MACHINE_OPERATIONS, {
        "apiVersion": VIRTUAL_MACHINE_OPERATIONS.api_version, "kind": VIRTUAL_MACHINE_OPERATIONS.kind,
        "metadata": {"generateName": f"drain-{vm.action.lower()}-{vm.name}-", "namespace": vm.namespace},
        "spec": {"type": vm.action, "virtualMachineName": vm.name, **extra}}, vm.namespace)
    return str(op["metadata"]["name"])


class _Changes:
    """Sets `changed` when an operation of `names` changes (a daemon thread watching them all
    until `close`); names are added as the drain creates them."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.names: set[tuple[str, str]] = set()
        self.changed = threading.Event()
        self._closed = threading.Event()
        threading.Thread(target=self._run, name="drain-watch", daemon=True).start()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                for event in self.kube.watch(VIRTUAL_MACHINE_OPERATIONS, timeout_seconds=30, bookmarks=False):
                    if self._closed.is_set():
                        return
                    meta = (event.get("object") or {}).get("metadata") or {}
                    if (meta.get("namespace", ""), meta.get("name", "")) in self.names:
                        self.changed.set()
            except Exception:  # noqa: BLE001 - refused, broken, protocol errors: the periodic look covers it
                self._closed.wait(1.0)

    def wait(self, seconds: float) -> None:
        self.changed.wait(seconds)
        self.changed.clear()

    def close(self) -> None:
        self._closed.set()


def drain(kube: KubeClient, node: str, *, timeout: float, force_stop: bool = False,
          progress: Callable[[list[VMDrain]], None] | None = None, poll: float = 1.0,
          prefer: dict[str, str] | None = None) -> DrainResult:
    t0 = time.monotonic()
    if kube.get_or_none(NODES, node) is None:
        raise ValueError(f"node {node!r} does not exist (see `kubectl get nodes`)")
    cordon(kube, node)
    vms: list[VMDrain] = []
    for obj in vms_on(kube, node):
        meta = obj["metadata"]
        why = not_migratable(obj)
        if why is None:
            vms.append(VMDrain(meta.get("namespace", ""), meta["name"], "Migrate" if prefer else "Evict"))
        elif force_stop:
            vms.append(VMDrain(meta.get("namespace", ""), meta["name"], "Stop", message=f"stopped: {why}"))
        else:
            vms.append(VMDrain(meta.get("namespace", ""), meta["name"], "None", phase="Failed",
                               message=f"cannot migrate live: {why} (use --force-stop to stop it instead)"))
    changes = _Changes(kube)
    try:
        for vm in vms:
            if vm.action != "None":
                vm.operation = _operation(kube, vm, force=vm.action == "Stop", prefer=prefer)
                changes.names.add((vm.namespace, vm.operation))
        _follow(kube, vms, node, t0 + timeout, progress, lambda: changes.wait(poll))
    finally:
        changes.close()
    for vm in vms:
        if not vm.done:
            vm.phase, vm.message = "Failed", f"still {vm.phase} after {timeout:.0f}s (--timeout): {vm.message}"
    return DrainResult(node, vms, time.monotonic() - t0)


def _follow(kube: KubeClient, vms: list[VMDrain], node: str, deadline: float,
            progress: Callable[[list[VMDrain]], None] | None, wait: Callable[[], None]) -> None:
    """Read each unfinished operation until all are done or past the deadline, `wait()` between.
    A completed move is finished once its VM's status names a node other than `node`: the VM
    controller may write the new node a moment after the operation's controller completes it,
    and the drain reports where each VM went (its `target`), never where it was."""
    while True:
        for vm in vms:
            if _finished(vm) or not vm.operation:
                continue
            if not vm.done:
                op = kube.get_or_none(VIRTUAL_MACHINE_OPERATIONS, vm.operation, vm.namespace) or {}
                status = op.get("status") or {}
                vm.phase = status.get("phase") or "Pending"
                completed: dict[str, Any] = next((c for c in status.get("conditions") or []
                                                  if c.get("type") == "Completed"), {})
                if vm.action != "Stop" or vm.phase == "Failed":  # a stopped VM keeps why it was stopped
                    vm.message = str(completed.get("message") or "")
                vm.seconds = time.monotonic() - vm.started
            if vm.ok and vm.action in MOVES:
                current = kube.get_or_none(VIRTUAL_MACHINES, vm.name, vm.namespace) or {}
                where = (current.get("status") or {}).get("nodeName") or ""
                vm.target = where if where != node else ""
        if progress:
            progress(vms)
        if all(_finished(vm) for vm in vms) or time.monotonic() > deadline:
            return
        wait()


def _finished(vm: VMDrain) -> bool:
    """Done, and a completed move's new node known (or no longer waited for, see SETTLE)."""
    settling = vm.ok and vm.action in MOVES and not vm.target \
        and time.monotonic() < vm.started + vm.seconds + SETTLE
    return vm.done and not settling
