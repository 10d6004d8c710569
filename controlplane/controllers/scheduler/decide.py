"""One scheduling decision: filter the nodes, check capacity, score the rest.

Filters (`nodefilters`, then `vmaffinity`) remove nodes that cannot run the VM whatever their
load; capacity removes those whose allocatable CPU or memory (capacity minus the memory the
node handler reserves for the host, `--reserved-memory`) cannot hold the VM on top of what is
placed and assumed there. Among the rest: nodes with usable KVM first, then the highest score —
least allocated (the share of CPU and memory left after placing, as kube-scheduler's
NodeResourcesLeastAllocated) plus the preferred node affinity and VM affinity scores, each
normalised to 0..100 — then the name, so a decision is deterministic.

A VM whose disk is already provisioned on a node (local storage) may only go there; when that
node is gone or cannot take it, the message says which disk pins it and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.common import quantity
from controlplane.controllers import scheduling
from controlplane.controllers.scheduler import nodefilters
from controlplane.controllers.scheduler.vmaffinity import (
    Affinity,
    NamespaceLabels,
    Placed,
    no_namespace_labels,
)

INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"


@dataclass(frozen=True)
class Request:
    vm: Placed
    spec: dict[str, Any]
    cpu: float
    memory: int
    selectors: list[dict[str, Any] | None] = field(default_factory=list)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    pinned: str | None = None
    """The node a provisioned disk pins the VM to."""
    pinned_by: str = ""
    """What pins it (`VirtualDisk "root"`)."""


@dataclass(frozen=True)
class Decision:
    node: str | None
    message: str = ""
    short: tuple[str, ...] = ()
    """The resources some node lacked ("cpu", "memory"), when no node fits."""


Load = Callable[[str], tuple[float, int]]


def _normalise(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return dict.fromkeys(scores, 0.0)
    return {n: (s - low) * 100 / (high - low) for n, s in scores.items()}


def _free(acpu: float, amem: int, ucpu: float, umem: int) -> str:
    return f"{max(acpu - ucpu, 0):.2f} cores, {quantity.format_bytes(max(amem - umem, 0))} memory free"


def decide(req: Request, nodes: list[dict[str, Any]], *, load: Load, placed: Mapping[str, list[Placed]],
           namespace_labels: NamespaceLabels = no_namespace_labels) -> Decision:
    candidates = nodes
    if req.pinned is not None:
        candidates = [n for n in nodes if n["metadata"]["name"] == req.pinned]
        if not candidates:
            return Decision(None, f"{req.pinned_by} is provisioned on node {req.pinned}, which no longer exists: "
                                  "the machine can only run where its disk is; restore the node or recreate the disk")
    affinity = Affinity(req.vm, nodes, placed, namespace_labels=namespace_labels)
    terms = nodefilters.required_terms(req.spec)
    refusals: Counter[str] = Counter()
    details: list[str] = []
    fits: dict[str, tuple[dict[str, Any], float]] = {}
    for node in candidates:
        name = node["metadata"]["name"]
        why = nodefilters.refusal(node, selectors=req.selectors, terms=terms, tolerations=req.tolerations)
        if why is None and affinity.has_terms:
            why = affinity.refusal(node)
        if why is not None:
            refusals[why] += 1
            if why in (nodefilters.NOT_READY, nodefilters.UNHEALTHY):
                details.append(f"{name}: {nodefilters.health_detail(node)}")
            continue
        acpu, amem = scheduling.allocatable(node)
        ucpu, umem = load(name)
        short = []
        if ucpu + req.cpu > acpu + 1e-9:
            short.append(INSUFFICIENT_CPU)
        if umem + req.memory > amem:
            short.append(INSUFFICIENT_MEMORY)
        if short:
            refusals.update(short)
            details.append(f"{name}: {_free(acpu, amem, ucpu, umem)}")
            continue
        cpu_left = (acpu - ucpu - req.cpu) / acpu if acpu > 0 else 0.0
        mem_left = (amem - umem - req.memory) / amem if amem > 0 else 0.0
        fits[name] = (node, (cpu_left + mem_left) * 50)
    if fits:
        node_pref = _normalise({n: float(nodefilters.preferred_score(node, req.spec)) for n, (node, _) in fits.items()})
        vm_pref = _normalise({n: float(affinity.score(node)) for n, (node, _) in fits.items()}) \
            if affinity.has_terms else dict.fromkeys(fits, 0.0)
        best = min(fits, key=lambda n: (not scheduling.has_kvm(fits[n][0]),
                                        -(fits[n][1] + node_pref[n] + vm_pref[n]), n))
        return Decision(best)
    summary = ", ".join(f"{count} {reason}" for reason, count in
                        sorted(refusals.items(), key=lambda rc: (-rc[1], rc[0])))
    message = f"0/{len(candidates)} nodes are available: {summary or 'there are no nodes'}."
    if details:
        message += " " + "; ".join(details) + "."
    if req.pinned is not None:
        message = f"{req.pinned_by} is provisioned on node {req.pinned}, which cannot run the machine now: {message}"
    short_resources = tuple(r.split()[-1] for r in (INSUFFICIENT_CPU, INSUFFICIENT_MEMORY) if r in refusals)
    return Decision(None, message, short_resources)
