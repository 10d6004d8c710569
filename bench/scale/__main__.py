"""bench/scale: the whole control plane at scale, on hollow nodes (kubemark/kwok style).

`dvp server --no-agent` (controllers on) gets N hollow Nodes and a hollow node handler
(`bench.scale.hollow`: Leases renewed, every volume Ready and every instance Running, no
QEMU), so placement, IPAM, disks and instances run for real. Two phases alternate, as in
Kubernetes' density test and kubemark (test/e2e/scalability/density.go):

- saturation: a batch of VMs, each with its VirtualDisk, created as fast as the server takes
  them; per batch creates/s, server CPU-seconds per VM (supervisor + all component processes,
  the batch's tail of work until the server is quiet included), RSS, and the burst's create ->
  Running p50/p95 (mostly the queueing of the burst behind the controllers);
- latency (`bench/scale/latency.py`): once the batch is Running and the server quiet, K VMs
  with their disks created one at a time at a low rate (default 50 at 5/s): create -> Running
  p50/p95/p99 of one VM in a cluster of that size, and the median time of each milestone on
  its path (address, disk, volume, instance), which shows where the time goes.

The peer, measured in the same run, is the same creates against `dvp server --no-controllers`
(the API alone): its rate for the saturation batches, its create acknowledgement for the latency
VMs (the floor). Latency VMs stay, so a latency phase after N saturation VMs runs among N plus
the earlier latency VMs (the count printed).

Targets (issue 13): creates/s >= 50% of the API-only rate at every batch; the last batch's
CPU per VM within 1.2x of the first; create -> Running p95 < 1 s at 5,000 VMs (latency phase).

    python -m bench.scale [--total 2000] [--batch 500] [--nodes 20] [--connections 1]
                          [--latency-vms 50] [--latency-rate 5] [--trace FILE] [-o json]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.apiserver import Api, _drive
from bench.report import percentile, print_table
from bench.scale import latency
from bench.scale.figures import METHOD, Batch, Figures, rows, verdicts
from bench.scale.procs import server_cpu, server_rss
from bench.scale.writes import parse as parse_writes
from bench.scale.writes import summary as writes_summary
from tests.services.apiserver import ApiServerProcess

GROUP = "virtualization.deckhouse.io/v1alpha2"
NS = "scale"


def disk_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "VirtualDisk", "metadata": {"name": f"{name}-root"},
            "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}


def vm_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "VirtualMachine", "metadata": {"name": name, "labels": {"bench": "scale"}},
            "spec": {"virtualMachineClassName": "generic", "cpu": {"cores": 1, "coreFraction": "5%"},
                     "memory": {"size": "256Mi"}, "runPolicy": "AlwaysOn", "osType": "Generic",
                     "bootloader": "BIOS", "blockDeviceRefs": [{"kind": "VirtualDisk", "name": f"{name}-root"}]}}


class Driver:
    """Creates disks + VMs in a namespace and follows the VMs' phases through one watch."""

    def __init__(self, server: ApiServerProcess, conns: int) -> None:
        self.server, self.api, self.conns = server, Api(server), conns
        self.sent: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.changed = asyncio.Event()
        self.seen = latency.Seen()

    def url(self, plural: str) -> str:
        return f"{self.server.url}/apis/{GROUP}/namespaces/{NS}/{plural}"

    async def create_vm(self, s: aiohttp.ClientSession, name: str) -> float:
        """The VM's disk, then the VM; seconds until both are acknowledged."""
        self.sent[name] = t0 = time.perf_counter()
        for plural, doc in (("virtualdisks", disk_manifest(name)), ("virtualmachines", vm_manifest(name))):
            async with s.post(self.url(plural), data=orjson.dumps(doc)) as r:
                if r.status != 201:
                    raise RuntimeError(f"create {plural}/{name}: {r.status} {await r.text()}")
                await r.read()
        return time.perf_counter() - t0

    async def create(self, start: int, n: int) -> float:
        names = [f"vm-{i:05d}" for i in range(start, start + n)]
        async with self.api.session(self.conns) as s:
            async def one(i: int) -> None:
                await self.create_vm(s, names[i])

            wall, _ = await _drive(n, self.conns, one)
        return wall

    async def latency_phase(self, names: list[str], rate: float, *, follow: bool) -> latency.Phase:
        """Create `names` one by one at `rate`/s; ours: their create -> Running and milestones,
        API only: their create -> acknowledged."""
        async with self.api.session(8) as s:
            if not follow:
                acks = await latency.paced(names, rate, lambda n: self.create_vm(s, n))
                return latency.Phase(0, acks)
            async with latency.tracking(s, self.server.url, NS, self.seen):
                await latency.paced(names, rate, lambda n: self.create_vm(s, n))
                unfinished = await self.wait_running(names, timeout=120.0)
        lat = [self.running[n] - self.sent[n] for n in names if n in self.running]
        traced = latency.trace(self.seen, self.sent, names)
        return latency.Phase(0, lat, unfinished, milestones=latency.milestones(traced), trace=traced)

    async def follow(self) -> None:
        """Record when each VM is first seen Running."""
        async with self.api.session(1) as s:
            await latency.watch(s, self.url("virtualmachines"), self._see)

    def _see(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        self.seen.see("virtualmachines", obj)
        if (obj.get("status") or {}).get("phase") == "Running" and name not in self.running:
            self.running[name] = time.perf_counter()
            self.changed.set()

    async def wait_running(self, names: list[str], timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            missing = sum(1 for n in names if n not in self.running)
            if not missing:
                return 0
            self.changed.clear()
            with _suppress_timeout():
                await asyncio.wait_for(self.changed.wait(), 1.0)
        return sum(1 for n in names if n not in self.running)


class _suppress_timeout:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, *_: object) -> bool:
        return exc_type is asyncio.TimeoutError or exc_type is TimeoutError


def start_server(work: Path, name: str, extra: list[str]) -> ApiServerProcess:
    server = ApiServerProcess(work / name / "data", extra_args=extra)
    server.start(timeout=180)
    server.wait_ready(timeout=180)
    return server


def start_hollow(server: ApiServerProcess, work: Path, nodes: int) -> subprocess.Popen[bytes]:
    token = work / "hollow.token"
    token.write_text(server.token)
    token.chmod(0o600)
    proc = subprocess.Popen([sys.executable, "-m", "bench.scale.hollow", server.url, str(token),
                             str(server.ca_file), "--nodes", str(nodes)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "nodes registered" not in line:
        raise RuntimeError(f"hollow nodes did not register: {line!r}")
    return proc


@dataclass(frozen=True)
class Plan:
    sizes: list[int]
    conns: int
    latency_vms: int
    latency_rate: float


async def settle(pid: int, data_dir: Path, *, quiet: float = 0.05, limit: float = 60.0) -> float:
    """Wait until the server uses under `quiet` of a core over a second (at most `limit` s); seconds waited."""
    start = time.perf_counter()
    cpu0, t0 = server_cpu(pid, data_dir), time.perf_counter()
    while time.perf_counter() - start < limit:
        await asyncio.sleep(1.0)
        cpu1, t1 = server_cpu(pid, data_dir), time.perf_counter()
        if (cpu1 - cpu0) / (t1 - t0) < quiet:
            break
        cpu0, t0 = cpu1, t1
    return time.perf_counter() - start


async def measure(server: ApiServerProcess, plan: Plan, *, follow: bool,
                  progress: str) -> tuple[list[Batch], list[latency.Phase], float]:
    """Per batch: the saturation creates, then (when following) wait until every VM of the batch
    is Running and the server is quiet again; then the latency phase. Returns the batches, the
    latency phases and the idle CPU share after settling (0..1 of one core)."""
    driver = Driver(server, plan.conns)
    await server_namespace(driver)
    watcher = asyncio.create_task(driver.follow()) if follow else None
    assert server.proc is not None
    pid = server.proc.pid
    batches: list[Batch] = []
    phases: list[latency.Phase] = []
    done = existing = 0
    for k, size in enumerate(plan.sizes):
        cpu0, writes0 = server_cpu(pid, server.data_dir), api_writes(server)
        wall = await driver.create(done, size)
        names = [f"vm-{i:05d}" for i in range(done, done + size)]
        unfinished = await driver.wait_running(names, timeout=max(120.0, size * 0.5)) if follow else 0
        settled = await settle(pid, server.data_dir)  # the batch's tail of work is its cost too
        cpu = server_cpu(pid, server.data_dir) - cpu0
        writes = {res: n / size for res, n in (api_writes(server) - writes0).items()}
        lat = [driver.running[n] - driver.sent[n] for n in names if n in driver.running]
        batch = Batch(existing, size, size / wall, cpu / size, server_rss(pid, server.data_dir),
                      percentile(lat, 50) if lat else 0.0, percentile(lat, 95) if lat else 0.0, unfinished,
                      sum(writes.values()))
        batches.append(batch)
        done += size
        existing += size
        print(f"{progress}: saturation {batch.before}->{existing} VMs: {batch.creates_per_s:.1f} creates/s, "
              f"{batch.cpu_per_vm * 1000:.1f} ms CPU/VM, burst p95 {batch.p95:.2f}s, RSS {batch.rss >> 20} MiB, "
              f"quiet after {settled:.1f}s, {writes_summary(writes)}"
              + (f", {unfinished} not Running" if unfinished else ""),
              file=sys.stderr, flush=True)
        if plan.latency_vms:
            lnames = [f"lat-{k:02d}-{j:03d}" for j in range(plan.latency_vms)]
            phase = await driver.latency_phase(lnames, plan.latency_rate, follow=follow)
            phase.existing, phase.settle = existing, settled
            phases.append(phase)
            existing += plan.latency_vms
            what = "create->Running" if follow else "create acknowledged"
            print(f"{progress}: latency at {phase.existing} VMs ({plan.latency_vms} at {plan.latency_rate:g}/s): "
                  f"{what} p50 {phase.p(50):.3f}s p95 {phase.p(95):.3f}s p99 {phase.p(99):.3f}s"
                  + (f", {phase.unfinished} not Running" if phase.unfinished else "")
                  + ("; after create (p50/p95): " + ", ".join(f"{m} {t50:.3f}/{t95:.3f}s"
                                                             for m, (t50, t95) in phase.milestones.items())
                     if phase.milestones else ""), file=sys.stderr, flush=True)
            await settle(pid, server.data_dir)
    if follow:  # idle means after the last VM is Running, not while a backlog drains
        await driver.wait_running([f"vm-{i:05d}" for i in range(done)], timeout=600)
    await asyncio.sleep(10)  # settle
    cpu0 = server_cpu(pid, server.data_dir)
    await asyncio.sleep(10)
    idle = (server_cpu(pid, server.data_dir) - cpu0) / 10
    if watcher is not None:
        watcher.cancel()
    return batches, phases, idle


def api_writes(server: ApiServerProcess) -> Counter[str]:
    """The writes the server's API has taken so far, by resource (its /metrics)."""
    status, body = server.raw("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics: {status}")
    return parse_writes(body.decode())


async def server_namespace(driver: Driver) -> None:
    await driver.api.namespace(NS)


async def run(plan: Plan, nodes: int, server_args: list[str]) -> tuple[Figures, Figures]:
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-scale-"))
    try:
        ours = start_server(work, "ours", ["--no-agent", *server_args])
        hollow = start_hollow(ours, work, nodes)
        try:
            mine = Figures(*await measure(ours, plan, follow=True, progress="dvp server"))
        finally:
            hollow.terminate()
            hollow.wait(10)
            ours.stop()
        peer = start_server(work, "peer", ["--no-agent", "--no-controllers"])
        try:
            theirs = Figures(*await measure(peer, plan, follow=False, progress="--no-controllers"))
        finally:
            peer.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return mine, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=2000, help="VMs in all (5000 for the issue's full scale)")
    parser.add_argument("--batch", type=int, default=500, help="VMs per batch")
    parser.add_argument("--nodes", type=int, default=20, help="hollow nodes")
    parser.add_argument("--connections", type=int, default=1, help="client connections creating")
    parser.add_argument("--latency-vms", type=int, default=50, help="latency VMs after each batch (0: none)")
    parser.add_argument("--latency-rate", type=float, default=5.0, help="latency VMs created per second")
    parser.add_argument("--trace", type=Path, help="write every latency VM's milestones (JSON) to this file")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="an extra `dvp server` flag for ours, e.g. --server-arg=--flow-seats=0 (repeatable)")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    sizes = [args.batch] * (args.total // args.batch) + ([args.total % args.batch] if args.total % args.batch else [])
    started = time.perf_counter()
    ours, peer = asyncio.run(run(Plan(sizes, args.connections, args.latency_vms, args.latency_rate), args.nodes,
                                 args.server_arg))
    print_table(f"bench/scale: {args.total} VMs with disks on {args.nodes} hollow nodes "
                f"(+{args.latency_vms} latency VMs after each batch, {args.latency_rate:g}/s; {METHOD})",
                "dvp server (controllers, hollow nodes)", "dvp server --no-controllers (API only)",
                rows(ours, peer), json_out=args.output == "json")
    for line in verdicts(ours, peer):
        print(line, file=sys.stderr if args.output == "json" else sys.stdout)
    print(f"wall time {time.perf_counter() - started:.0f}s", file=sys.stderr)
    if args.trace:
        args.trace.write_bytes(orjson.dumps({str(ph.existing): ph.trace for ph in ours.phases}))


if __name__ == "__main__":
    main()
