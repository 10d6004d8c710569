"""Hollow nodes for bench/scale, like Kubernetes' kubemark and kwok: N Node objects with
capacity, a Ready condition and Leases renewed every few seconds, and a hollow node handler
that answers the internal contract without QEMU: every InternalVirtualDiskVolume becomes Ready
(with its path and capacity) and every InternalVirtualMachineInstance Running. Placement, IPAM,
disks and instances thus run for real in the control plane; only the host side is hollow.

Runs as its own process (`python -m bench.scale.hollow URL TOKEN CA --nodes N`) so its CPU is
neither the server's nor the benchmark driver's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ssl
from typing import Any

import aiohttp
import orjson

from bench.scale.latency import watch

INTERNAL = "/apis/internal.virtualization.deckhouse.io/v1"
NODE_LABEL = "virtualization.deckhouse.io/node"
MERGE = {"Content-Type": "application/merge-patch+json"}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_doc(name: str, cpu: int, memory: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "bench": "hollow",
                                                  "virtualization.deckhouse.io/kvm": "true"}}}


def node_status(cpu: int, memory: str) -> dict[str, Any]:
    stamp = now()
    res = {"cpu": str(cpu), "memory": memory, "pods": "110"}
    return {"capacity": res, "allocatable": res,
            "conditions": [{"type": "Ready", "status": "True", "reason": "NodeHandlerReady",
                            "message": "hollow node", "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
            "nodeInfo": {"kubeletVersion": "hollow"}}


class Hollow:
    def __init__(self, url: str, token: str, ca: str, *, nodes: int, cpu: int, memory: str, workers: int) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.ssl = ssl.create_default_context(cafile=ca)
        self.names = [f"hollow-{i:03d}" for i in range(nodes)]
        self.cpu, self.memory, self.workers = cpu, memory, workers
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.done: set[str] = set()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl, limit=64),
                                         headers=self.headers, timeout=timeout) as s:
            for name in self.names:
                await self._register(s, name)
            print(f"hollow: {len(self.names)} nodes registered", flush=True)
            tasks = [asyncio.create_task(self._leases(s)),
                     asyncio.create_task(self._watch(s, "internalvirtualdiskvolumes")),
                     asyncio.create_task(self._watch(s, "internalvirtualmachineinstances")),
                     *[asyncio.create_task(self._worker(s)) for _ in range(self.workers)]]
            await asyncio.gather(*tasks)

    async def _register(self, s: aiohttp.ClientSession, name: str) -> None:
        async with s.post(f"{self.url}/api/v1/nodes", data=orjson.dumps(node_doc(name, self.cpu, self.memory))) as r:
            assert r.status in (201, 409), await r.text()
        async with s.patch(f"{self.url}/api/v1/nodes/{name}/status", headers=MERGE,
                           data=orjson.dumps({"status": node_status(self.cpu, self.memory)})) as r:
            assert r.status == 200, await r.text()
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now()}}
        async with s.post(f"{self.url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                          data=orjson.dumps(lease)) as r:
            assert r.status in (201, 409), await r.text()

    async def _leases(self, s: aiohttp.ClientSession) -> None:
        """Renew every node's Lease every 10 s, as a node handler does."""
        while True:
            await asyncio.sleep(10)
            for name in self.names:
                url = f"{self.url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
                async with s.patch(url, headers=MERGE, data=orjson.dumps({"spec": {"renewTime": now()}})) as r:
                    await r.read()

    async def _watch(self, s: aiohttp.ClientSession, plural: str) -> None:
        """List, then watch from the list's resourceVersion; again from the last one seen."""
        await watch(s, f"{self.url}{INTERNAL}/{plural}", lambda obj: self.queue.put_nowait((plural, obj)),
                    types=("ADDED", "MODIFIED"), bookmarks=True)

    async def _worker(self, s: aiohttp.ClientSession) -> None:
        while True:
            plural, obj = await self.queue.get()
            meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
            if meta.get("deletionTimestamp") or spec.get("nodeName") not in self.names:
                continue
            new = volume_status(obj) if plural == "internalvirtualdiskvolumes" else instance_status(obj)
            if status.get("phase") == new["phase"] and status.get("observedGeneration") == new["observedGeneration"] \
                    and status.get("capacityBytes") == new.get("capacityBytes"):
                continue  # already answered: a hollow node handler writes only what changed
            url = f"{self.url}{INTERNAL}/namespaces/{meta['namespace']}/{plural}/{meta['name']}/status"
            async with s.patch(url, headers=MERGE, data=orjson.dumps({"status": new})) as r:
                await r.read()


def _bytes(size: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
    for suffix, mult in units.items():
        if size.endswith(suffix):
            return int(float(size[:-2]) * mult)
    return int(size or 0)


def volume_status(obj: dict[str, Any]) -> dict[str, Any]:
    meta, spec = obj["metadata"], obj.get("spec") or {}
    size = _bytes(str(spec.get("size") or "0"))
    return {"phase": "Ready", "path": f"/hollow/{meta['namespace']}/{meta['name']}.qcow2", "capacityBytes": size,
            "capacity": f"{size >> 20}Mi", "observedGeneration": int(meta.get("generation") or 0),
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                            "lastTransitionTime": now()}]}


def instance_status(obj: dict[str, Any]) -> dict[str, Any]:
    meta, spec = obj["metadata"], obj.get("spec") or {}
    running = spec.get("runState", "Running") == "Running"
    stamp = now()
    return {"phase": "Running" if running else "Stopped", "nodeName": spec.get("nodeName"),
            "observedGeneration": int(meta.get("generation") or 0), "domainType": "kvm",
            **({"startedAt": stamp} if running else {"stopReason": "Requested"}),
            "conditions": [{"type": "Running", "status": "True" if running else "False",
                            "reason": "DomainRunning" if running else "DomainStopped", "message": "hollow",
                            "lastTransitionTime": stamp}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("token_file")
    parser.add_argument("ca")
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--cpu", type=int, default=64)
    parser.add_argument("--memory", default="1Ti")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with open(args.token_file) as f:
        token = f.read().strip()
    asyncio.run(Hollow(args.url, token, args.ca, nodes=args.nodes, cpu=args.cpu, memory=args.memory,
                       workers=args.workers).run())


if __name__ == "__main__":
    main()
