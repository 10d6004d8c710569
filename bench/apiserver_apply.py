"""bench/apiserver_apply: what server-side apply costs on the embedded API server, against
the two ways of changing the same objects it replaces, measured in the same run.

N VirtualMachines (default 1,000) are created first (not timed). Then each pass changes every
one of them once over one HTTPS connection, twice, in opposite orders, after the
controllers have settled:

- plain update: `PUT` of the whole object (the peer for the target: SSA at most 1.5x its cost);
- client-side apply as kubectl 1.20 does it: `GET`, then a merge `PATCH` carrying the
  `last-applied-configuration` annotation (the peer SSA replaces for users);
- server-side apply as kubectl 1.33 does it: one `PATCH` with `application/apply-patch+yaml`
  and `fieldManager=kubectl`.

Every write also keeps managedFields, so the plain update pays for field tracking too.

    python -m bench.apiserver_apply [--count 1000] [-o json]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.apiserver import Api, _drive, vm_manifest
from bench.report import Row, percentile, print_table
from tests.services.apiserver import ApiServerProcess

NS = "bench-apply"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _changed(name: str, cores: int) -> dict[str, Any]:
    obj = vm_manifest(name)
    obj["metadata"]["namespace"] = NS
    obj["spec"]["cpu"]["cores"] = cores
    return obj


class Passes:
    def __init__(self, api: Api, names: list[str]) -> None:
        self.api = api
        self.names = names
        self.url = api.path(NS)
        self.current: dict[str, dict[str, Any]] = {}

    async def create(self) -> None:
        async with self.api.session(1) as s:
            for name in self.names:
                async with s.post(self.url, data=orjson.dumps(vm_manifest(name))) as r:
                    assert r.status == 201, await r.text()
                    self.current[name] = orjson.loads(await r.read())

    async def settle(self) -> None:
        """Wait until the controllers have finished reacting to the last pass (not timed), and
        keep the objects as they are now for the next plain update."""
        last = -1
        async with self.api.session(1) as s:
            while True:
                async with s.get(self.url) as r:
                    listed = orjson.loads(await r.read())
                rv = int(listed["metadata"]["resourceVersion"])
                if rv == last:
                    break
                last = rv
                await asyncio.sleep(1.0)
        self.current = {o["metadata"]["name"]: o for o in listed["items"]}

    async def plain_update(self, cores: int) -> tuple[float, list[float]]:
        async with self.api.session(1) as s:
            async def one(i: int) -> None:
                name = self.names[i]
                obj = self.current[name]
                obj["spec"]["cpu"]["cores"] = cores
                async with s.put(f"{self.url}/{name}", data=orjson.dumps(obj)) as r:
                    if r.status == 409:  # a controller wrote in between: read and retry, as a client would
                        async with s.get(f"{self.url}/{name}") as g:
                            self.current[name] = orjson.loads(await g.read())
                        return await one(i)
                    assert r.status == 200, await r.text()
                    self.current[name] = orjson.loads(await r.read())
            return await _drive(len(self.names), 1, one)

    async def client_side_apply(self, cores: int) -> tuple[float, list[float]]:
        async with self.api.session(1) as s:
            async def one(i: int) -> None:
                name = self.names[i]
                desired = _changed(name, cores)
                async with s.get(f"{self.url}/{name}") as g:
                    live = orjson.loads(await g.read())
                last = orjson.loads((live["metadata"].get("annotations") or {}).get(LAST_APPLIED, "{}"))
                patch: dict[str, Any] = {"spec": {"cpu": {"cores": cores}}} if last else {"spec": desired["spec"]}
                patch["metadata"] = {"annotations": {LAST_APPLIED: orjson.dumps(desired).decode()}}
                async with s.patch(f"{self.url}/{name}?fieldManager=kubectl-client-side-apply", data=orjson.dumps(
                        patch), headers={"Content-Type": "application/merge-patch+json"}) as r:
                    assert r.status == 200, await r.text()
                    await r.read()
            return await _drive(len(self.names), 1, one)

    async def server_side_apply(self, cores: int) -> tuple[float, list[float]]:
        async with self.api.session(1) as s:
            async def one(i: int) -> None:
                name = self.names[i]
                body = orjson.dumps(_changed(name, cores))
                async with s.patch(f"{self.url}/{name}?fieldManager=kubectl&force=true", data=body,
                                   headers={"Content-Type": "application/apply-patch+yaml"}) as r:
                    assert r.status == 200, await r.text()
                    await r.read()
            return await _drive(len(self.names), 1, one)


async def run(count: int) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-apply-"))
    server = ApiServerProcess(work / "data")
    server.start()
    try:
        api = Api(server)
        await api.namespace(NS)
        passes = Passes(api, [f"vm-{i:05d}" for i in range(count)])
        await passes.create()
        timed: dict[str, tuple[float, list[float]]] = {"update": (0.0, []), "csa": (0.0, []), "ssa": (0.0, [])}
        # two rounds in opposite orders, each write a real change, the controllers settled before each pass
        for what, cores in [("update", 2), ("csa", 3), ("ssa", 4), ("ssa", 5), ("csa", 6), ("update", 7)]:
            await passes.settle()
            run_pass = {"update": passes.plain_update, "csa": passes.client_side_apply,
                        "ssa": passes.server_side_apply}[what]
            wall, lat = await run_pass(cores)
            timed[what] = (timed[what][0] + wall, timed[what][1] + lat)
        (up_wall, up_lat), (csa_wall, csa_lat), (ssa_wall, ssa_lat) = timed["update"], timed["csa"], timed["ssa"]
        count *= 2
    finally:
        try:
            server.stop()
        except subprocess.TimeoutExpired:  # a loaded machine: SIGTERM's shutdown took too long
            server.kill()
        shutil.rmtree(work, ignore_errors=True)
    return [
        Row("SSA vs plain update (PUT), 1 connection", count / ssa_wall, count / up_wall, "ops/s"),
        Row("SSA vs client-side apply (GET + PATCH)", count / ssa_wall, count / csa_wall, "ops/s"),
        Row("latency p50: SSA vs plain update", percentile(ssa_lat, 50) * 1000, percentile(up_lat, 50) * 1000,
            "ms", "lower"),
        Row("latency p99: SSA vs plain update", percentile(ssa_lat, 99) * 1000, percentile(up_lat, 99) * 1000,
            "ms", "lower"),
        Row("latency p50: SSA vs client-side apply", percentile(ssa_lat, 50) * 1000,
            percentile(csa_lat, 50) * 1000, "ms", "lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows = asyncio.run(run(args.count))
    print_table(f"bench/apiserver_apply: {args.count} VirtualMachines", "server-side apply",
                "plain update / client-side apply", rows, json_out=args.output == "json")
    if args.output == "table":
        cost = rows[0].peer / rows[0].ours if rows[0].peer and rows[0].ours else float("nan")
        print(f"SSA costs {cost:.2f}x a plain update (target: at most 1.5x)")


if __name__ == "__main__":
    main()
