"""bench/apiserver: the embedded API server's write, list and watch performance, against
etcd (Debian `etcd-server`, the datastore behind kube-apiserver) measured in the same run.

For N VirtualMachine objects (default 10,000) it measures durable creates per second over
one HTTPS connection and over 8, create latency p50/p99, the time to list all N, and the
delivery latency (create sent -> event received) p99 across 50 watchers. The peer figure
is etcd's raw put rate of the same JSON documents through its v3 JSON gateway, over one
connection and over 8. Targets: >= 1,000 creates/s on one connection, list < 0.5 s, watch
p99 < 50 ms.

    python -m bench.apiserver [--count 10000] [--watchers 50] [-o json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.report import Row, percentile, print_table
from tests.services.apiserver import ApiServerProcess, free_port

VM_GROUP = "virtualization.deckhouse.io/v1alpha2"


def vm_manifest(name: str) -> dict[str, Any]:
    """A VirtualMachine as DVP's user guide writes one."""
    return {
        "apiVersion": VM_GROUP, "kind": "VirtualMachine",
        "metadata": {"name": name, "labels": {"bench": "apiserver", "tier": "web"}},
        "spec": {
            "virtualMachineClassName": "generic",
            "cpu": {"cores": 1, "coreFraction": "10%"},
            "memory": {"size": "1Gi"},
            "runPolicy": "AlwaysOn",
            "osType": "Generic",
            "bootloader": "BIOS",
            "blockDeviceRefs": [{"kind": "VirtualDisk", "name": f"{name}-root"}],
            "provisioning": {"type": "UserData", "userData": "#cloud-config\nssh_pwauth: true\n"},
        },
    }


async def _drive(n: int, conns: int, request: Any) -> tuple[float, list[float]]:
    """Run `request(i)` for i in range(n) over `conns` parallel workers; (wall seconds, latencies)."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await request(i)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(conns)])
    return time.perf_counter() - start, latencies


class Api:
    def __init__(self, server: ApiServerProcess) -> None:
        self.base = server.url
        self.headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
        self.ssl = ssl.create_default_context(cafile=str(server.ca_file))

    def session(self, conns: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns, ssl=self.ssl), headers=self.headers)

    def path(self, ns: str) -> str:
        return f"{self.base}/apis/{VM_GROUP}/namespaces/{ns}/virtualmachines"

    async def namespace(self, ns: str) -> None:
        async with self.session(1) as s:
            async with s.post(f"{self.base}/api/v1/namespaces", data=orjson.dumps({"metadata": {"name": ns}})) as r:
                assert r.status in (201, 409), await r.text()

    async def creates(self, ns: str, n: int, conns: int, *, sent: dict[str, float] | None = None) -> tuple[float, list[float]]:
        bodies = [orjson.dumps(vm_manifest(f"vm-{i:05d}")) for i in range(n)]
        async with self.session(conns) as s:
            url = self.path(ns)

            async def one(i: int) -> None:
                if sent is not None:
                    sent[f"vm-{i:05d}"] = time.perf_counter()
                async with s.post(url, data=bodies[i]) as r:
                    if r.status != 201:
                        raise RuntimeError(f"create failed: {r.status} {await r.text()}")
                    await r.read()

            return await _drive(n, conns, one)

    async def list_all(self, ns: str) -> tuple[float, int]:
        async with self.session(1) as s:
            t0 = time.perf_counter()
            async with s.get(self.path(ns)) as r:
                body = await r.read()
            took = time.perf_counter() - t0
        return took, len(orjson.loads(body)["items"])

    async def watch(self, ns: str, expect: int, sent: dict[str, float], delays: list[float],
                    ready: asyncio.Event, opened: list[int]) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl), headers=self.headers,
                                         timeout=timeout) as s:
            async with s.get(self.path(ns), params={"watch": "true", "resourceVersion": str(await self._rv(s, ns))}) as r:
                opened.append(1)
                ready.set()
                got = 0
                async for line in r.content:
                    now = time.perf_counter()
                    name = orjson.loads(line)["object"]["metadata"]["name"]
                    delays.append(now - sent[name])
                    got += 1
                    if got >= expect:
                        return

    async def _rv(self, s: aiohttp.ClientSession, ns: str) -> int:
        async with s.get(self.path(ns), params={"limit": "1"}) as r:
            return int(orjson.loads(await r.read())["metadata"]["resourceVersion"])


class Etcd:
    """etcd on loopback with its own data directory, driven through the v3 JSON gateway."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        peer = free_port()
        exe = shutil.which("etcd") or "/usr/bin/etcd"
        self.proc = subprocess.Popen(
            [exe, "--data-dir", str(self.workdir / "etcd"), "--name", "bench",
             "--listen-client-urls", f"http://127.0.0.1:{self.port}",
             "--advertise-client-urls", f"http://127.0.0.1:{self.port}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"bench=http://127.0.0.1:{peer}"],
            stdout=subprocess.DEVNULL, stderr=(self.workdir / "etcd.log").open("wb"))

    async def wait(self) -> None:
        async with aiohttp.ClientSession() as s:
            for _ in range(200):
                try:
                    async with s.post(f"http://127.0.0.1:{self.port}/v3/kv/range", data=b'{"key":"AA=="}') as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("etcd did not start; see etcd.log")

    async def puts(self, prefix: str, n: int, conns: int) -> tuple[float, list[float]]:
        bodies = [orjson.dumps({"key": base64.b64encode(f"/registry/vms/{prefix}/vm-{i:05d}".encode()).decode(),
                                "value": base64.b64encode(orjson.dumps(vm_manifest(f"vm-{i:05d}"))).decode()})
                  for i in range(n)]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as s:
            url = f"http://127.0.0.1:{self.port}/v3/kv/put"

            async def one(i: int) -> None:
                async with s.post(url, data=bodies[i]) as r:
                    if r.status != 200:
                        raise RuntimeError(f"etcd put failed: {r.status}")
                    await r.read()

            return await _drive(n, conns, one)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


async def run(count: int, watchers: int, watch_events: int) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-api-"))
    server = ApiServerProcess(work / "data")
    server.start()
    etcd = Etcd(work)
    etcd.start()
    try:
        api = Api(server)
        for ns in ("bench-1", "bench-8", "bench-w"):
            await api.namespace(ns)
        wall1, lat1 = await api.creates("bench-1", count, 1)
        wall8, lat8 = await api.creates("bench-8", count, 8)
        list_s, listed = await api.list_all("bench-1")
        assert listed == count, f"listed {listed}, expected {count}"
        sent: dict[str, float] = {}
        delays: list[float] = []
        ready = asyncio.Event()
        opened: list[int] = []
        tasks = [asyncio.create_task(api.watch("bench-w", watch_events, sent, delays, ready, opened))
                 for _ in range(watchers)]
        while len(opened) < watchers:
            await asyncio.sleep(0.05)
        await api.creates("bench-w", watch_events, 1, sent=sent)
        await asyncio.wait_for(asyncio.gather(*tasks), 300)
        await etcd.wait()
        e_wall1, e_lat1 = await etcd.puts("one", count, 1)
        e_wall8, _ = await etcd.puts("eight", count, 8)
    finally:
        server.stop()
        etcd.stop()
        shutil.rmtree(work, ignore_errors=True)
    return [
        Row("creates/s, 1 connection", count / wall1, count / e_wall1, "ops/s"),
        Row("creates/s, 8 connections", count / wall8, count / e_wall8, "ops/s"),
        Row("create latency p50, 1 connection", percentile(lat1, 50) * 1000, percentile(e_lat1, 50) * 1000, "ms",
            "lower"),
        Row("create latency p99, 1 connection", percentile(lat1, 99) * 1000, percentile(e_lat1, 99) * 1000, "ms",
            "lower"),
        Row("create latency p99, 8 connections", percentile(lat8, 99) * 1000, None, "ms", "lower"),
        Row(f"list all {count}", list_s * 1000, None, "ms", "lower"),
        Row(f"watch delivery p99, {watchers} watchers", percentile(delays, 99) * 1000, None, "ms", "lower"),
        Row(f"watch delivery p50, {watchers} watchers", percentile(delays, 50) * 1000, None, "ms", "lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--watch-events", type=int, default=1000)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows = asyncio.run(run(args.count, args.watchers, args.watch_events))
    print_table(f"bench/apiserver: {args.count} VirtualMachines", "dvp server (SQLite, TLS)",
                "etcd 3.4 (JSON gateway, plain HTTP)", rows, json_out=args.output == "json")


if __name__ == "__main__":
    main()
