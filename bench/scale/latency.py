"""The latency phase of bench/scale, measured the way Kubernetes' density test
(test/e2e/scalability/density.go) and kubemark measure pod startup latency: the saturation
phase fills the cluster as fast as it takes; once every VM of it is Running and the control
plane has gone quiet, K "latency" VMs (each with its disk, as the batch VMs) are created one
at a time at a low rate (density: 100 latency pods at 5/s after saturation, with their own
SLO: startup p99 <= 5 s). Each thus measures create -> Running of one VM in a cluster of that
size, not its place in the queue of a burst.

It also shows where that time goes: while the phase runs it watches every object on a latency
VM's path (its address claim, disk, the disk's volume, the instance, the VM) and reports, per
milestone, the median time after the create at which it was first seen; the difference between
two milestones is one hop (a controller's watch, queue and write; or the hollow node handler's).
Against `--no-controllers` the same paced creates measure only the API's acknowledgement (both
POSTs), the floor no controller can go under.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.report import percentile

GROUP = "virtualization.deckhouse.io/v1alpha2"
INTERNAL = "internal.virtualization.deckhouse.io/v1"

# (label, API group/version, plural, name of the object from the VM's name, phase that ends the hop)
MILESTONES: tuple[tuple[str, str, str, Callable[[str], str], str | None], ...] = (
    ("address claimed", GROUP, "virtualmachineipaddresses", lambda vm: vm, None),
    ("address bound", GROUP, "virtualmachineipaddresses", lambda vm: vm, "Bound|Attached"),
    ("disk waits for its VM", GROUP, "virtualdisks", lambda vm: f"{vm}-root", "WaitForFirstConsumer"),
    ("volume created", INTERNAL, "internalvirtualdiskvolumes", lambda vm: f"{vm}-root", None),
    ("volume Ready (hollow)", INTERNAL, "internalvirtualdiskvolumes", lambda vm: f"{vm}-root", "Ready"),
    ("disk Ready", GROUP, "virtualdisks", lambda vm: f"{vm}-root", "Ready"),
    ("instance created", INTERNAL, "internalvirtualmachineinstances", lambda vm: vm, None),
    ("instance Running (hollow)", INTERNAL, "internalvirtualmachineinstances", lambda vm: vm, "Running"),
    ("VM Running", GROUP, "virtualmachines", lambda vm: vm, "Running"),
)


@dataclass
class Phase:
    """One latency phase: `existing` VMs before it, the create -> Running (ours) or create
    acknowledged (API only) latencies, and the median time of each milestone after the create."""

    existing: int
    latencies: list[float]
    unfinished: int = 0
    settle: float = 0.0
    milestones: dict[str, tuple[float, float]] = field(default_factory=dict)
    """p50 and p95 seconds after the create of each milestone (`MILESTONES`)."""
    trace: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per latency VM, the seconds after its create of each milestone."""

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) if self.latencies else 0.0


class Seen:
    """When each (plural, name) was first seen at all (phase "") and first seen in each phase."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, str, str], float] = {}

    def see(self, plural: str, obj: dict[str, Any]) -> None:
        now = time.perf_counter()
        name = obj["metadata"]["name"]
        self.at.setdefault((plural, name, ""), now)
        phase = (obj.get("status") or {}).get("phase")
        if phase:
            self.at.setdefault((plural, name, phase), now)

    def first(self, plural: str, name: str, phases: str | None) -> float | None:
        times = [self.at[k] for k in ((plural, name, p) for p in (phases or "").split("|")) if k in self.at]
        return min(times) if times else None


async def watch(s: aiohttp.ClientSession, url: str, on_obj: Callable[[dict[str, Any]], None], *,
                rv: str = "", types: tuple[str, ...] = (), bookmarks: bool = False) -> None:
    """List (unless `rv` is given), then watch from the last version seen; forever. Every listed
    object goes to `on_obj`, and so does each watch event's object of one of `types` (all if empty)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    while True:
        if not rv:
            async with s.get(url) as r:
                doc = orjson.loads(await r.read())
            rv = doc["metadata"]["resourceVersion"]
            for item in doc["items"]:
                on_obj(item)
        try:
            params = {"watch": "true", "resourceVersion": rv, **({"allowWatchBookmarks": "true"} if bookmarks else {})}
            async with s.get(url, timeout=timeout, params=params) as r:
                if r.status == 410:
                    rv = ""
                    continue
                async for line in r.content:
                    event = orjson.loads(line)
                    obj = event["object"]
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if not types or event["type"] in types:
                        on_obj(obj)
        except (TimeoutError, aiohttp.ClientError):
            await asyncio.sleep(0.2)


async def current_rv(s: aiohttp.ClientSession, url: str) -> str:
    """The collection's resourceVersion now, without listing it (a one-item page)."""
    async with s.get(url, params={"limit": "1"}) as r:
        return str(orjson.loads(await r.read())["metadata"]["resourceVersion"])


async def paced(names: list[str], rate: float, create: Callable[[str], Awaitable[float]]) -> list[float]:
    """Start `create(name)` for each name at `rate` per second (open loop: a slow create does not
    delay the next one); each create's acknowledgement time."""
    start = time.perf_counter()

    async def one(i: int, name: str) -> float:
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        return await create(name)

    return list(await asyncio.gather(*[one(i, n) for i, n in enumerate(names)]))


def trace(seen: Seen, sent: dict[str, float], names: list[str]) -> dict[str, dict[str, float]]:
    """Per latency VM, the seconds after its create at which each milestone was seen."""
    return {n: {label: t - sent[n] for label, _group, plural, name_of, phases in MILESTONES
                if (t := seen.first(plural, name_of(n), phases)) is not None} for n in names}


def milestones(traced: dict[str, dict[str, float]]) -> dict[str, tuple[float, float]]:
    """p50 and p95 of the seconds after the create at which each milestone was seen."""
    out: dict[str, tuple[float, float]] = {}
    for label, *_ in MILESTONES:
        after = [t[label] for t in traced.values() if label in t]
        if after:
            out[label] = (percentile(after, 50), percentile(after, 95))
    return out


@contextlib.asynccontextmanager
async def tracking(s: aiohttp.ClientSession, base: str, ns: str, seen: Seen) -> Any:
    """Watch, from now on, every kind on a latency VM's path (VMs are followed by the driver)."""
    tasks = []
    for group, plural in sorted({(g, p) for _, g, p, _, _ in MILESTONES if p != "virtualmachines"}):
        url = f"{base}/apis/{group}/namespaces/{ns}/{plural}"
        rv = await current_rv(s, url)
        tasks.append(asyncio.create_task(watch(s, url, functools.partial(seen.see, plural), rv=rv)))
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
