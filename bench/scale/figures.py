"""What bench/scale prints: per saturation batch and per latency phase, ours against the API
alone (`--no-controllers`) measured in the same run, with ratios, and the issue's verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.report import Row
from bench.scale.latency import Phase

METHOD = "latency phase as Kubernetes' density/kubemark pod startup latency"


@dataclass
class Batch:
    """One saturation batch: `size` VMs created as fast as they are taken, `before` VMs existing."""

    before: int
    size: int
    creates_per_s: float
    cpu_per_vm: float
    rss: int
    p50: float = 0.0
    p95: float = 0.0
    unfinished: int = 0
    writes_per_vm: float = 0.0
    """API writes (creates, updates, patches, deletes) the server took per VM of the batch."""


@dataclass
class Figures:
    batches: list[Batch]
    phases: list[Phase] = field(default_factory=list)
    idle: float = 0.0


def rows(ours: Figures, peer: Figures) -> list[Row]:
    out: list[Row] = []
    for o, p in zip(ours.batches, peer.batches, strict=True):
        span = f"saturation {o.before}->{o.before + o.size} VMs"
        out += [Row(f"{span}: creates/s", o.creates_per_s, p.creates_per_s, "VMs/s"),
                Row(f"{span}: server CPU per VM", o.cpu_per_vm * 1000, p.cpu_per_vm * 1000, "ms", "lower"),
                Row(f"{span}: API writes per VM", o.writes_per_vm, p.writes_per_vm, "writes", "lower"),
                Row(f"{span}: server RSS", o.rss / 2**20, p.rss / 2**20, "MiB", "lower"),
                Row(f"{span}: burst create->Running p50", o.p50 * 1000, None, "ms", "lower"),
                Row(f"{span}: burst create->Running p95", o.p95 * 1000, None, "ms", "lower")]
    for ph, floor in zip(ours.phases, peer.phases, strict=True):
        at = f"latency at {ph.existing} VMs"
        out += [Row(f"{at}: create->Running p{q} (peer: create acknowledged)", ph.p(q) * 1000, floor.p(q) * 1000,
                    "ms", "lower") for q in (50, 95, 99)]
    if ours.phases:
        last = ours.phases[-1]
        out += [Row(f"latency at {last.existing} VMs: {m}, p{q} after create", t * 1000, None, "ms", "lower")
                for m, (t50, t95) in last.milestones.items() for q, t in ((50, t50), (95, t95))]
    out.append(Row("idle CPU after settling", ours.idle * 100, None, "% of a core", "lower"))
    return out


def verdicts(ours: Figures, peer: Figures) -> list[str]:
    worst = min(o.creates_per_s / p.creates_per_s for o, p in zip(ours.batches, peer.batches, strict=True))
    flat = ours.batches[-1].cpu_per_vm / max(ours.batches[0].cpu_per_vm, 1e-9)
    unfinished = sum(o.unfinished for o in ours.batches)
    last = ours.batches[-1]
    out = [f"creates/s vs API-only, worst batch: {worst:.2f}x (target >= 0.50): {'ok' if worst >= 0.5 else 'MISSED'}",
           f"CPU per VM, last batch / first: {flat:.2f}x (target <= 1.20): {'ok' if flat <= 1.2 else 'MISSED'}"]
    if ours.phases:
        ph = ours.phases[-1]
        ok = ph.p(95) < 1 and not ph.unfinished
        out.append(f"create->Running p95, latency phase at {ph.existing} VMs: {ph.p(95):.2f}s"
                   + (f" ({ph.unfinished} VMs never Running)" if ph.unfinished else "")
                   + f" (target < 1 s): {'ok' if ok else 'MISSED'}")
    out += [f"create->Running p95 of the last saturation burst ({last.size} VMs at once; queueing, no target): "
            f"{last.p95:.2f}s" + (f" ({last.unfinished} VMs never Running)" if last.unfinished else ""),
            f"idle CPU after settling: {ours.idle * 100:.1f}% (target < 1%): {'ok' if ours.idle < 0.01 else 'MISSED'}",
            f"VMs not Running at the end of their batch: {unfinished}"]
    return out
