"""bench/apiserver_proto: built-in kinds in protobuf (what kubectl 1.33, helm and every
client-go program send) against the same in JSON, on the same `dvp server` in the same run.

N ConfigMaps (default 10,000) are created in protobuf into one namespace and N in JSON into
another, in alternating batches of 250 over 8 connections (each format first in every other
turn), so both meet the same database size and the same load from the rest of the machine; then
each namespace is listed in its own format (best of 5). The median batch rate is the figure
least moved by other work on the machine. One more row lists the JSON-created
objects in protobuf: the cold case, where no object was encoded to protobuf before (created
and watched objects are, through the server's encoded-object cache). Times run from sending
the request to having read the whole answer; bodies are encoded before the clock starts, the
list answers are not decoded. Target: protobuf at least as fast as JSON (ratio >= 1).

    python -m bench.apiserver_proto [--count 10000] [-o json]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.apiserver import Api, _drive
from bench.report import Row, percentile, print_table
from controlplane.apiserver.protobuf import codec
from controlplane.apiserver.protobuf.schema import REGISTRY
from tests.services.apiserver import ApiServerProcess

PB = codec.MEDIA_TYPE
JSON = "application/json"
BATCH = 250
CONNS = 8


def configmap(name: str) -> dict[str, Any]:
    """A ConfigMap as an application keeps its settings in one."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app": "web", "bench": "proto"}},
            "data": {"LOG_LEVEL": "info", "LISTEN": ":8080",
                     "app.yaml": "server:\n  workers: 4\n  timeout: 30s\ncache:\n  size: 256Mi\n"}}


def body(fmt: str, name: str) -> bytes:
    if fmt == JSON:
        return orjson.dumps(configmap(name))
    return codec.envelope("v1", "ConfigMap", codec.encode_object(REGISTRY["ConfigMap"], configmap(name)))


class Bench:
    def __init__(self, server: ApiServerProcess) -> None:
        self.api = Api(server)
        self.walls: dict[str, float] = {JSON: 0.0, PB: 0.0}
        self.latencies: dict[str, list[float]] = {JSON: [], PB: []}
        self.batch_rates: dict[str, list[float]] = {JSON: [], PB: []}

    def url(self, ns: str) -> str:
        return f"{self.api.base}/api/v1/namespaces/{ns}/configmaps"

    async def creates(self, fmt: str, ns: str, start: int, n: int) -> None:
        bodies = [body(fmt, f"cm-{i:05d}") for i in range(start, start + n)]
        headers = {"Content-Type": fmt, "Accept": f"{PB}, {JSON}" if fmt == PB else JSON}
        async with self.api.session(CONNS) as s:
            async def one(i: int) -> None:
                async with s.post(self.url(ns), data=bodies[i], headers=headers) as r:
                    answer = await r.read()
                    if r.status != 201:
                        raise RuntimeError(f"create failed: {r.status} {answer[:300]!r}")

            wall, lat = await _drive(n, CONNS, one)
        self.walls[fmt] += wall
        self.batch_rates[fmt].append(n / wall)
        self.latencies[fmt] += lat

    async def list_all(self, fmt: str, ns: str) -> tuple[float, int]:
        async with self.api.session(1) as s:
            t0 = time.perf_counter()
            async with s.get(self.url(ns), headers={"Accept": fmt}) as r:
                answer = await r.read()
            took = time.perf_counter() - t0
            assert r.status == 200 and r.content_type == fmt, (r.status, r.content_type)
        return took, len(answer)


def _count(answer_fmt: str, data: bytes) -> int:
    if answer_fmt == JSON:
        return len(orjson.loads(data)["items"])
    return len(codec.decode_list(REGISTRY["ConfigMap"], codec.open_envelope(data)[2])["items"])


async def run(count: int) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-proto-"))
    server = ApiServerProcess(work / "data")
    server.start()
    try:
        bench = Bench(server)
        for ns in ("bench-pb", "bench-json"):
            await bench.api.namespace(ns)
        for turn, start in enumerate(range(0, count, BATCH)):
            n = min(BATCH, count - start)
            pair = [(JSON, "bench-json"), (PB, "bench-pb")]
            for fmt, ns in pair if turn % 2 == 0 else pair[::-1]:  # neither format always goes first
                await bench.creates(fmt, ns, start, n)
        cold, cold_size = await bench.list_all(PB, "bench-json")
        lists: dict[str, list[float]] = {JSON: [], PB: []}
        sizes: dict[str, int] = {}
        for _round in range(5):
            for fmt, ns in ((JSON, "bench-json"), (PB, "bench-pb")):
                took, sizes[fmt] = await bench.list_all(fmt, ns)
                lists[fmt].append(took)
        async with bench.api.session(1) as s:
            for fmt, ns in ((JSON, "bench-json"), (PB, "bench-pb")):
                async with s.get(bench.url(ns), headers={"Accept": fmt}) as r:
                    listed = _count(fmt, await r.read())
                assert listed == count, f"{fmt}: listed {listed}, expected {count}"
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    w, lat, rates = bench.walls, bench.latencies, bench.batch_rates
    return [
        Row(f"creates/s, {CONNS} connections", count / w[PB], count / w[JSON], "ops/s"),
        Row(f"creates/s, median of the {len(rates[PB])} batches", percentile(rates[PB], 50),
            percentile(rates[JSON], 50), "ops/s"),
        Row("create latency p50", percentile(lat[PB], 50) * 1000, percentile(lat[JSON], 50) * 1000, "ms", "lower"),
        Row("create latency p99", percentile(lat[PB], 99) * 1000, percentile(lat[JSON], 99) * 1000, "ms", "lower"),
        Row(f"list all {count} (best of 5)", min(lists[PB]) * 1000, min(lists[JSON]) * 1000, "ms", "lower"),
        Row(f"list all {count}, cold protobuf encoding", cold * 1000, min(lists[JSON]) * 1000, "ms", "lower"),
        Row(f"create {count} + list {count}", (w[PB] + min(lists[PB])) * 1000,
            (w[JSON] + min(lists[JSON])) * 1000, "ms", "lower"),
        Row("list answer size", sizes[PB] / 1024, sizes[JSON] / 1024, "KiB", "lower"),
        Row("list answer size, cold", cold_size / 1024, sizes[JSON] / 1024, "KiB", "lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    try:
        rows = asyncio.run(run(args.count))
    except aiohttp.ClientError as exc:
        raise SystemExit(f"bench/apiserver_proto: {exc}") from exc
    print_table(f"bench/apiserver_proto: {args.count} ConfigMaps", "protobuf", "JSON (same server, same run)", rows,
                json_out=args.output == "json")


if __name__ == "__main__":
    main()
