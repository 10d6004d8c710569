"""bench/scale: the whole control plane at scale, on hollow nodes (kubemark/kwok style).

`dvp server --no-agent` (controllers on) gets N hollow Nodes and a hollow node handler
(`bench.scale.hollow`: Leases renewed, every volume Ready and every instance Running, no
QEMU), so placement, IPAM, disks and instances run for real. VMs, each with its VirtualDisk,
are created in batches; per batch the bench prints creates/s, create -> Running p50/p95,
server CPU-seconds per VM (supervisor + all component processes) and RSS. The peer, measured
in the same run, is the same creates against `dvp server --no-controllers` (the API alone).

Targets (issue 13): creates/s >= 50% of the API-only rate at every batch; the last batch's
CPU per VM within 1.2x of the first; create -> Running p95 < 1 s.

    python -m bench.scale [--total 2000] [--batch 500] [--nodes 20] [--connections 1] [-o json]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.apiserver import Api, _drive
from bench.report import Row, percentile, print_table
from bench.scale.procs import server_cpu, server_rss
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


@dataclass
class Batch:
    before: int
    size: int
    creates_per_s: float
    cpu_per_vm: float
    rss: int
    p50: float = 0.0
    p95: float = 0.0
    unfinished: int = 0


class Driver:
    """Creates disks + VMs in a namespace and follows the VMs' phases through one watch."""

    def __init__(self, server: ApiServerProcess, conns: int) -> None:
        self.server, self.api, self.conns = server, Api(server), conns
        self.sent: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.changed = asyncio.Event()

    def url(self, plural: str) -> str:
        return f"{self.server.url}/apis/{GROUP}/namespaces/{NS}/{plural}"

    async def create(self, start: int, n: int) -> float:
        names = [f"vm-{i:05d}" for i in range(start, start + n)]
        async with self.api.session(self.conns) as s:
            async def one(i: int) -> None:
                name = names[i]
                self.sent[name] = time.perf_counter()
                for plural, doc in (("virtualdisks", disk_manifest(name)), ("virtualmachines", vm_manifest(name))):
                    async with s.post(self.url(plural), data=orjson.dumps(doc)) as r:
                        if r.status != 201:
                            raise RuntimeError(f"create {plural}/{name}: {r.status} {await r.text()}")
                        await r.read()

            wall, _ = await _drive(n, self.conns, one)
        return wall

    async def follow(self) -> None:
        """Record when each VM is first seen Running."""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        rv = ""
        async with self.api.session(1) as s:
            while True:
                if not rv:
                    async with s.get(self.url("virtualmachines")) as r:
                        doc = orjson.loads(await r.read())
                    rv = doc["metadata"]["resourceVersion"]
                    for item in doc["items"]:
                        self._see(item)
                try:
                    async with s.get(self.url("virtualmachines"), timeout=timeout,
                                     params={"watch": "true", "resourceVersion": rv}) as r:
                        if r.status == 410:
                            rv = ""
                            continue
                        async for line in r.content:
                            obj = orjson.loads(line)["object"]
                            rv = obj["metadata"].get("resourceVersion", rv)
                            self._see(obj)
                except (TimeoutError, aiohttp.ClientError):
                    await asyncio.sleep(0.2)

    def _see(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
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


async def measure(server: ApiServerProcess, sizes: list[int], conns: int, *, follow: bool,
                  progress: str) -> tuple[list[Batch], float]:
    """Per batch: creates, then (when following) wait until every VM of the batch is Running.
    Returns the batches and the idle CPU share after settling (0..1 of one core)."""
    driver = Driver(server, conns)
    await server_namespace(driver)
    watcher = asyncio.create_task(driver.follow()) if follow else None
    assert server.proc is not None
    pid = server.proc.pid
    batches: list[Batch] = []
    done = 0
    for size in sizes:
        cpu0 = server_cpu(pid, server.data_dir)
        wall = await driver.create(done, size)
        names = [f"vm-{i:05d}" for i in range(done, done + size)]
        unfinished = await driver.wait_running(names, timeout=max(120.0, size * 0.5)) if follow else 0
        cpu = server_cpu(pid, server.data_dir) - cpu0
        lat = [driver.running[n] - driver.sent[n] for n in names if n in driver.running]
        batch = Batch(done, size, size / wall, cpu / size, server_rss(pid, server.data_dir),
                      percentile(lat, 50) if lat else 0.0, percentile(lat, 95) if lat else 0.0, unfinished)
        batches.append(batch)
        done += size
        print(f"{progress}: {batch.before}->{done} VMs: {batch.creates_per_s:.1f} creates/s, "
              f"{batch.cpu_per_vm * 1000:.1f} ms CPU/VM, p95 {batch.p95:.2f}s, RSS {batch.rss >> 20} MiB"
              + (f", {unfinished} not Running" if unfinished else ""), file=sys.stderr, flush=True)
    if follow:  # idle means after the last VM is Running, not while a backlog drains
        await driver.wait_running([f"vm-{i:05d}" for i in range(done)], timeout=600)
    await asyncio.sleep(10)  # settle
    cpu0 = server_cpu(pid, server.data_dir)
    await asyncio.sleep(10)
    idle = (server_cpu(pid, server.data_dir) - cpu0) / 10
    if watcher is not None:
        watcher.cancel()
    return batches, idle


async def server_namespace(driver: Driver) -> None:
    await driver.api.namespace(NS)


def rows(ours: list[Batch], peer: list[Batch], idle: float) -> list[Row]:
    out: list[Row] = []
    for o, p in zip(ours, peer, strict=True):
        span = f"{o.before}->{o.before + o.size} VMs"
        out += [Row(f"{span}: creates/s", o.creates_per_s, p.creates_per_s, "VMs/s"),
                Row(f"{span}: server CPU per VM", o.cpu_per_vm * 1000, p.cpu_per_vm * 1000, "ms", "lower"),
                Row(f"{span}: server RSS", o.rss / 2**20, p.rss / 2**20, "MiB", "lower"),
                Row(f"{span}: create->Running p50", o.p50 * 1000, None, "ms", "lower"),
                Row(f"{span}: create->Running p95", o.p95 * 1000, None, "ms", "lower")]
    out.append(Row("idle CPU after settling", idle * 100, None, "% of a core", "lower"))
    return out


def verdicts(ours: list[Batch], peer: list[Batch], idle: float) -> list[str]:
    worst = min(o.creates_per_s / p.creates_per_s for o, p in zip(ours, peer, strict=True))
    flat = ours[-1].cpu_per_vm / max(ours[0].cpu_per_vm, 1e-9)
    p95 = ours[-1].p95
    unfinished = sum(o.unfinished for o in ours)
    return [f"creates/s vs API-only, worst batch: {worst:.2f}x (target >= 0.50): {'ok' if worst >= 0.5 else 'MISSED'}",
            f"CPU per VM, last batch / first: {flat:.2f}x (target <= 1.20): {'ok' if flat <= 1.2 else 'MISSED'}",
            f"create->Running p95, last batch: {p95:.2f}s"
            + (f" ({ours[-1].unfinished} VMs never Running)" if ours[-1].unfinished else "")
            + f" (target < 1 s): {'ok' if p95 < 1 and not ours[-1].unfinished else 'MISSED'}",
            f"idle CPU after settling: {idle * 100:.1f}% (target < 1%): {'ok' if idle < 0.01 else 'MISSED'}",
            f"VMs not Running at the end of their batch: {unfinished}"]


async def run(sizes: list[int], conns: int, nodes: int) -> tuple[list[Batch], list[Batch], float]:
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-scale-"))
    try:
        ours = start_server(work, "ours", ["--no-agent"])
        hollow = start_hollow(ours, work, nodes)
        try:
            ours_batches, idle = await measure(ours, sizes, conns, follow=True, progress="dvp server")
        finally:
            hollow.terminate()
            hollow.wait(10)
            ours.stop()
        peer = start_server(work, "peer", ["--no-agent", "--no-controllers"])
        try:
            peer_batches, _ = await measure(peer, sizes, conns, follow=False, progress="--no-controllers")
        finally:
            peer.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ours_batches, peer_batches, idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=2000, help="VMs in all (5000 for the issue's full scale)")
    parser.add_argument("--batch", type=int, default=500, help="VMs per batch")
    parser.add_argument("--nodes", type=int, default=20, help="hollow nodes")
    parser.add_argument("--connections", type=int, default=1, help="client connections creating")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    sizes = [args.batch] * (args.total // args.batch) + ([args.total % args.batch] if args.total % args.batch else [])
    ours, peer, idle = asyncio.run(run(sizes, args.connections, args.nodes))
    print_table(f"bench/scale: {args.total} VMs with disks on {args.nodes} hollow nodes",
                "dvp server (controllers, hollow nodes)", "dvp server --no-controllers (API only)",
                rows(ours, peer, idle), json_out=args.output == "json")
    for line in verdicts(ours, peer, idle):
        print(line)


if __name__ == "__main__":
    main()
