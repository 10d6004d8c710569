"""DVP's object metrics, computed from the controllers' informer caches at scrape time: one
`d8_virtualization_<kind>_status_phase{name,namespace,phase}` series per object and known
phase (1 for the current one, 0 for the others, as DVP's virtualization-controller exports
them), plus the VM's configured CPU and memory. The alert rules and dashboards shipped in
`controlplane/api/monitoring` use these names.

Nothing is recorded per event: a scrape walks the caches (O(objects)), so the figures are
exactly what the controllers see.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from controlplane.api.resources import CLUSTER_VIRTUAL_IMAGES, VIRTUAL_DISKS, VIRTUAL_IMAGES, VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import DiskPhase, ImagePhase, MachinePhase
from controlplane.common.kube.client import Resource
from controlplane.common.metrics import REGISTRY, Family
from controlplane.common.quantity import to_bytes
from controlplane.controllers.runtime.context import Context

_PHASES: list[tuple[Resource, str, type[StrEnum]]] = [
    (VIRTUAL_MACHINES, "virtualmachine", MachinePhase),
    (VIRTUAL_DISKS, "virtualdisk", DiskPhase),
    (VIRTUAL_IMAGES, "virtualimage", ImagePhase),
    (CLUSTER_VIRTUAL_IMAGES, "clustervirtualimage", ImagePhase),
]
_BASE = ("name", "namespace", "uid")


def _phase_family(objs: list[dict[str, Any]], kind: str, phases: type[StrEnum]) -> Family:
    vm = kind == "virtualmachine"
    fam = Family(f"d8_virtualization_{kind}_status_phase", "gauge", f"The {kind} current phase.",
                 (*_BASE, "node", "phase") if vm else (*_BASE, "phase"))
    for obj in objs:
        meta, status = obj["metadata"], obj.get("status") or {}
        current = status.get("phase") or ""
        base: tuple[str, ...] = (meta["name"], meta.get("namespace") or "", meta.get("uid") or "")
        if vm:
            base = (*base, status.get("nodeName") or "")
        for phase in phases:
            fam.add(1.0 if phase.value == current else 0.0, *base, phase.value)
    return fam


def _vm_sizing(objs: list[dict[str, Any]]) -> list[Family]:
    labels = (*_BASE, "node")
    cores = Family("d8_virtualization_virtualmachine_cpu_cores", "gauge", "The virtualmachine current core count.",
                   labels)
    fraction = Family("d8_virtualization_virtualmachine_cpu_core_fraction", "gauge",
                      "The virtualmachine current coreFraction.", labels)
    memory = Family("d8_virtualization_virtualmachine_configuration_memory_size_bytes", "gauge",
                    "The virtualmachine current memory size.", labels)
    for obj in objs:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        base = (meta["name"], meta.get("namespace") or "", meta.get("uid") or "", status.get("nodeName") or "")
        cpu = spec.get("cpu") or {}
        cores.add(float(cpu.get("cores") or 0), *base)
        frac = str(cpu.get("coreFraction") or "100%").rstrip("%")
        fraction.add(float(frac) if frac.replace(".", "", 1).isdigit() else 100.0, *base)
        size = (spec.get("memory") or {}).get("size")
        try:
            memory.add(float(to_bytes(str(size))) if size else 0.0, *base)
        except ValueError:
            memory.add(0.0, *base)
    return [cores, fraction, memory]


def collector(ctx: Context) -> Iterable[Family]:
    out: list[Family] = []
    for resource, kind, phases in _PHASES:
        inf = ctx.informers.get(resource)
        if inf is None:
            continue
        objs = inf.list()
        out.append(_phase_family(objs, kind, phases))
        if resource == VIRTUAL_MACHINES:
            out.extend(_vm_sizing(objs))
    return out


def install(ctx: Context) -> None:
    REGISTRY.add_collector("controllers", lambda: collector(ctx))
