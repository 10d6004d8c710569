"""bench/authz: what authorization costs the API server — the same requests against two
servers started in the same run, one with RBAC (node authorizer, RBAC, escalation checks,
audit log) and one authorizing everything (`AlwaysAllow`, the server before RBAC).

Requests come from a user bound to `edit` in one namespace by a RoleBinding (the common
case and the slow path: no `system:masters` shortcut), over 8 HTTPS connections: N creates
of VirtualMachines, N gets, and lists of all of them. Each measure runs on both servers back
to back, the order alternating, for `--rounds` rounds; each figure is the median. Target: RBAC at >= 0.9 of
AlwaysAllow's request rate. The first row is the authorizer's own cost per request, measured
in-process (no peer: the figure the rates' ratio comes from, free of the machine's noise).

    python -m bench.authz [--count 2000] [--rounds 6] [-o json]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from bench.apiserver import VM_GROUP, _drive, vm_manifest
from bench.report import Row, percentile, print_table
from tests.services.apiserver import REPO, free_port

NAMESPACE, USER = "bench", "bench-dev"
READY = "bench/authz server ready"


async def serve(data_dir: Path, port: int, authorization: str) -> None:
    """The API server alone (no controllers), as the benchmark's child process runs it."""
    from controlplane.api.crds import load_crds
    from controlplane.apiserver.server import APIServer, ServerConfig

    server = APIServer(ServerConfig(data_dir=data_dir, port=port, crds=load_crds(), authorization=authorization))
    await server.start()
    print(READY, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()


class Server:
    def __init__(self, work: Path, authorization: str) -> None:
        self.data_dir = work / authorization
        self.port = free_port()
        self.authorization = authorization
        self.proc: subprocess.Popen[str] | None = None
        self.admin = self.user = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.authz", "--serve", str(self.data_dir), "--port", str(self.port),
             "--authorization", self.authorization], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if READY not in line:
            raise RuntimeError(f"{self.authorization} server did not start")
        from controlplane.apiserver.auth import TokenAuthenticator
        from controlplane.common.kubeconfig import read_kubeconfig

        self.admin = read_kubeconfig(self.data_dir / "kubeconfig")["token"]
        self.user = TokenAuthenticator(self.data_dir / "tokens.json").issue(USER, ["bench-devs"])
        self.ssl = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def session(self, token: str, conns: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns, ssl=self.ssl), headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    @property
    def vms(self) -> str:
        return f"https://127.0.0.1:{self.port}/apis/{VM_GROUP}/namespaces/{NAMESPACE}/virtualmachines"

    async def prepare(self) -> None:
        base = f"https://127.0.0.1:{self.port}"
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "bench-dev-edit"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                   "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": USER}]}
        async with self.session(self.admin, 1) as s:
            async with s.post(f"{base}/api/v1/namespaces", data=orjson.dumps({"metadata": {"name": NAMESPACE}})) as r:
                assert r.status == 201, await r.text()
            async with s.post(f"{base}/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/rolebindings",
                              data=orjson.dumps(binding)) as r:
                assert r.status == 201, await r.text()

    async def creates(self, prefix: str, n: int, conns: int) -> float:
        bodies = [orjson.dumps(vm_manifest(f"{prefix}-{i:05d}")) for i in range(n)]
        async with self.session(self.user, conns) as s:
            async def one(i: int) -> None:
                async with s.post(self.vms, data=bodies[i]) as r:
                    if r.status != 201:
                        raise RuntimeError(f"create failed: {r.status} {await r.text()}")
                    await r.read()

            wall, _ = await _drive(n, conns, one)
        return n / wall

    async def gets(self, prefix: str, n: int, conns: int) -> float:
        async with self.session(self.user, conns) as s:
            async def one(i: int) -> None:
                async with s.get(f"{self.vms}/{prefix}-{i:05d}") as r:
                    if r.status != 200:
                        raise RuntimeError(f"get failed: {r.status} {await r.text()}")
                    await r.read()

            wall, _ = await _drive(n, conns, one)
        return n / wall

    async def list_ms(self, times: int) -> float:
        took: list[float] = []
        async with self.session(self.user, 1) as s:
            for _ in range(times):
                t0 = time.perf_counter()
                async with s.get(self.vms) as r:
                    assert r.status == 200
                    await r.read()
                took.append(time.perf_counter() - t0)
        return percentile(took, 50) * 1000


def decision_us(times: int = 20_000) -> float:
    """In-process cost of authorizing one request (attributes from the URL + the decision) for
    the namespaced editor, with the default roles: what RBAC adds to each request, without
    the network and the machine's load around it."""
    from controlplane.apiserver.authz import defaults
    from controlplane.apiserver.authz.authorizer import Authorizer
    from controlplane.apiserver.authz.node import NodeAuthorizer
    from controlplane.apiserver.authz.rbac import RbacAuthorizer
    from controlplane.apiserver.authz.requests import attributes_of

    rbac = "rbac.authorization.k8s.io"
    data = {f"{rbac}/clusterroles": [(f"/{r['metadata']['name']}", r) for r in defaults.cluster_roles()],
            f"{rbac}/clusterrolebindings": [(f"/{b['metadata']['name']}", b) for b in defaults.cluster_role_bindings()],
            f"{rbac}/rolebindings": [(f"{NAMESPACE}/edit", {"roleRef": {"kind": "ClusterRole", "name": "edit"},
                                                            "subjects": [{"kind": "User", "name": USER}]})]}
    authorizer = Authorizer(RbacAuthorizer(lambda r: data.get(r, [])), NodeAuthorizer(lambda r, k: None,
                                                                                       lambda r, n: []))
    path = f"/apis/{VM_GROUP}/namespaces/{NAMESPACE}/virtualmachines/vm-00001"
    t0 = time.perf_counter()
    for _ in range(times):
        assert authorizer.authorize(attributes_of("GET", path, {}, USER, ("bench-devs",))).allowed
    return (time.perf_counter() - t0) / times * 1e6


async def run(count: int, rounds: int) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-authz-"))
    rbac, allow = Server(work, "RBAC"), Server(work, "AlwaysAllow")
    figures: dict[tuple[str, str], list[float]] = {}
    try:
        for server in (rbac, allow):
            server.start()
            await server.prepare()
        for r in range(rounds):
            # each measure back to back on both servers, the order alternating, so a change in
            # the machine's load hits both alike
            for what in ("creates", "gets", "list"):
                for server in ((rbac, allow) if r % 2 == 0 else (allow, rbac)):
                    if what == "creates":
                        value = await server.creates(f"r{r}", count, 8)
                    elif what == "gets":
                        value = await server.gets(f"r{r}", count, 8)
                    else:
                        value = await server.list_ms(5)
                    figures.setdefault((server.authorization, what), []).append(value)
    finally:
        for server in (rbac, allow):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    def median(key: tuple[str, str]) -> float:
        return percentile(figures[key], 50)

    return [
        Row("authorizing one request in-process (attributes + decision)", decision_us(), None, "us", "lower"),
        Row(f"creates/s, 8 connections ({USER}: edit in {NAMESPACE})", median(("RBAC", "creates")),
            median(("AlwaysAllow", "creates")), "ops/s"),
        Row("gets/s, 8 connections", median(("RBAC", "gets")), median(("AlwaysAllow", "gets")), "ops/s"),
        Row(f"list latency p50, {count}..{count * rounds} VMs", median(("RBAC", "list")),
            median(("AlwaysAllow", "list")), "ms", "lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--authorization", default="RBAC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.port, args.authorization))
        return
    rows = asyncio.run(run(args.count, args.rounds))
    print_table(f"bench/authz: {args.count} VirtualMachines per round, median of {args.rounds} rounds",
                "dvp server, RBAC + node authorizer + audit", "dvp server, AlwaysAllow", rows,
                json_out=args.output == "json")


if __name__ == "__main__":
    main()
