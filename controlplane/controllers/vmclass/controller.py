"""The VirtualMachineClass reconciler: handlers in order —
1. deletion: held by a finalizer while VMs use the class (InUse), then released;
2. nodes: which Ready nodes match the class's node selector and tolerations
   (`status.availableNodes`, `maxAllocatableResources`, condition Ready);
3. discovery and CPU features (condition Discovered for `cpu.type: Discovery`);
4. phase: Ready when nodes are available, Pending otherwise, Terminating when deleting."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_MACHINE_CLASSES, VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import VirtualMachineClassPhase as Phase
from controlplane.api.v1alpha2 import VMClassCondition as C
from controlplane.common import quantity
from controlplane.common.kube.client import NODES, KubeError
from controlplane.controllers import scheduling
from controlplane.controllers.names import FINALIZER_VMCLASS
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, own_key


def _users(state: State) -> list[str]:
    return sorted(f"{vm['metadata']['namespace']}/{vm['metadata']['name']}"
                  for vm in state.lookup(indexes.VMS_BY_CLASS, state.name))


class DeletionHandler:
    """InUse while VMs use the class. Its message names them only while the class is being
    deleted (what the user must move away); otherwise it stays the same however many VMs come
    and go, so a new VM of the class costs no write of the class (and no O(n) listing)."""

    name = "deletion"

    def handle(self, state: State) -> None:
        if not state.deleting:
            in_use = indexes.count(state.ctx, indexes.VMS_BY_CLASS, state.name) > 0
            if in_use:
                conditions.set_condition(state.status, C.Type.IN_USE, True, C.Reason.VM_CLASS_IN_USE,
                                         "used by virtual machines: deleting the class waits until none uses it",
                                         generation=state.generation)
            else:
                conditions.remove(state.status, C.Type.IN_USE)
            state.add_finalizer(FINALIZER_VMCLASS)
            return
        users = _users(state)
        if users:
            conditions.set_condition(state.status, C.Type.IN_USE, True, C.Reason.VM_CLASS_IN_USE,
                                     f"used by {len(users)} virtual machine(s): {', '.join(users[:5])}; delete "
                                     "them or move them to another class to finish deleting this one",
                                     generation=state.generation)
        else:
            conditions.remove(state.status, C.Type.IN_USE)
        state.status["phase"] = Phase.TERMINATING
        if not users:
            state.remove_finalizer(FINALIZER_VMCLASS)
        state.stop = True


class NodesHandler:
    name = "nodes"

    def handle(self, state: State) -> None:
        spec = state.spec
        selectors = [spec.get("nodeSelector")]
        if (spec.get("cpu") or {}).get("type") == "Discovery":
            selectors.append(((spec.get("cpu") or {}).get("discovery") or {}).get("nodeSelector"))
        nodes = [n for n in state.list(NODES)
                 if scheduling.eligible(n, selectors=selectors, tolerations=spec.get("tolerations") or [])]
        state.status["availableNodes"] = sorted(n["metadata"]["name"] for n in nodes)
        if nodes:
            cpu = max(scheduling.allocatable(n)[0] for n in nodes)
            mem = max(scheduling.allocatable(n)[1] for n in nodes)
            state.status["maxAllocatableResources"] = {"cpu": str(int(cpu)), "memory": quantity.format_bytes(mem)}
            conditions.set_condition(state.status, C.Type.READY, True, C.Reason.SUITABLE_NODES_FOUND,
                                     f"{len(nodes)} node(s) can run machines of this class",
                                     generation=state.generation)
        else:
            state.status.pop("maxAllocatableResources", None)
            conditions.set_condition(state.status, C.Type.READY, False, C.Reason.NO_SUITABLE_NODES_FOUND,
                                     "no Ready node matches the class's node selector and tolerations",
                                     generation=state.generation)


class CPUHandler:
    name = "cpu"

    def handle(self, state: State) -> None:
        cpu = state.spec.get("cpu") or {}
        if cpu.get("type") == "Discovery":
            conditions.set_condition(state.status, C.Type.DISCOVERED, True, C.Reason.DISCOVERY_SUCCEEDED,
                                     "the common CPU of the selected nodes is used", generation=state.generation)
        else:
            conditions.remove(state.status, C.Type.DISCOVERED)
        features = list(cpu.get("features") or []) if cpu.get("type") == "Features" else []
        state.status["cpuFeatures"] = {"enabled": features}


class PhaseHandler:
    name = "phase"

    def handle(self, state: State) -> None:
        state.status["phase"] = Phase.READY if state.status.get("availableNodes") else Phase.PENDING
        state.status["observedGeneration"] = state.generation


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, VIRTUAL_MACHINE_CLASSES,
                            [DeletionHandler(), NodesHandler(), CPUHandler(), PhaseHandler()],
                            failure_condition=C.Type.READY)

    def all_classes(_obj: dict[str, Any]) -> list[tuple[str, str]]:
        return [own_key(c) for c in ctx.informer(VIRTUAL_MACHINE_CLASSES).list()]

    def class_of_vm(vm: dict[str, Any]) -> list[tuple[str, str]]:
        name = (vm.get("spec") or {}).get("virtualMachineClassName")
        return [("", name)] if name else []

    watches = [
        Watch(VIRTUAL_MACHINE_CLASSES, lambda o: [own_key(o)]),
        Watch(NODES, all_classes, relevant=scheduling.placement_changed),
        Watch(VIRTUAL_MACHINES, class_of_vm,
              relevant=lambda o, old: (o.get("spec") or {}).get("virtualMachineClassName")
              != ((old or {}).get("spec") or {}).get("virtualMachineClassName")),
    ]
    return reconciler, watches



def ensure_generic(ctx: Context) -> None:
    """DVP creates the class `generic` at install; so does the platform at first start."""
    doc: dict[str, Any] = yaml.safe_load(
        resources.files("controlplane.controllers.vmclass").joinpath("generic.yaml").read_text())
    try:
        ctx.kube.create(VIRTUAL_MACHINE_CLASSES, doc)
    except KubeError as exc:
        if not exc.already_exists:
            raise
