"""Placing a VirtualMachine on a node: Ready and schedulable, matching the class's and the
VM's node selectors and required node affinity, tolerating its taints, with free CPU and
memory for it; nodes with usable KVM first, then the least loaded. Once placed, a VM stays
on its node (its disks live there)."""

from __future__ import annotations

from typing import Any

from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINE_CLASSES
from controlplane.common import quantity
from controlplane.common.kube.client import NODES
from controlplane.controllers import scheduling
from controlplane.controllers.runtime.state import State


def requested(spec: dict[str, Any]) -> tuple[float, int]:
    """(CPU cores, memory bytes) a VM asks of its node (cores x coreFraction)."""
    cpu = spec.get("cpu") or {}
    fraction = str(cpu.get("coreFraction") or "100%").rstrip("%")
    frac = 1.0 if fraction in ("", "Auto") else int(fraction) / 100
    mem = quantity.to_bytes((spec.get("memory") or {}).get("size") or 0)
    return int(cpu.get("cores") or 1) * frac, mem


def _affinity_selectors(spec: dict[str, Any]) -> list[dict[str, Any]]:
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    return [{"matchExpressions": t.get("matchExpressions") or []} for t in terms[:1]]


def choose_node(state: State) -> tuple[str | None, str]:
    """A node for the VM, or None and why none fits."""
    spec = state.spec
    cls = state.get(VIRTUAL_MACHINE_CLASSES, spec.get("virtualMachineClassName", "")) or {}
    cls_spec = cls.get("spec") or {}
    selectors = [cls_spec.get("nodeSelector"), spec.get("nodeSelector"), *_affinity_selectors(spec)]
    tolerations = [*(cls_spec.get("tolerations") or []), *(spec.get("tolerations") or [])]
    cpu, mem = requested(spec)
    used: dict[str, tuple[float, int]] = {}
    for inst in state.list(INSTANCES):
        if inst["metadata"].get("namespace") == state.namespace and inst["metadata"]["name"] == state.name:
            continue
        node = (inst.get("spec") or {}).get("nodeName")
        c, m = _instance_request(inst)
        uc, um = used.get(node, (0.0, 0))
        used[node] = (uc + c, um + m)
    fits: list[tuple[bool, float, str]] = []
    reasons: list[str] = []
    for node in state.list(NODES):
        name = node["metadata"]["name"]
        if not scheduling.eligible(node, selectors=selectors, tolerations=tolerations):
            reasons.append(f"{name}: not ready, unschedulable, or not matching selectors/tolerations")
            continue
        acpu, amem = scheduling.allocatable(node)
        ucpu, umem = used.get(name, (0.0, 0))
        if ucpu + cpu > acpu + 1e-9 or umem + mem > amem:
            reasons.append(f"{name}: not enough free CPU or memory (free {acpu - ucpu:.2f} cores, "
                           f"{quantity.format_bytes(max(0, amem - umem))} memory)")
            continue
        fits.append((not scheduling.has_kvm(node), (ucpu + cpu) / max(acpu, 1e-9), name))
    if not fits:
        return None, "no node can run the machine: " + ("; ".join(reasons) if reasons else "there are no nodes")
    fits.sort()
    return fits[0][2], ""


def _instance_request(inst: dict[str, Any]) -> tuple[float, int]:
    spec = inst.get("spec") or {}
    cpu = spec.get("cpu") or {}
    fraction = str(cpu.get("coreFraction") or "100%").rstrip("%")
    return int(cpu.get("cores") or 1) * int(fraction) / 100, quantity.to_bytes((spec.get("memory") or {}).get("size") or 0)
