"""The node handler's metrics: per-VM CPU, memory, disk and network figures from libvirt's
domain statistics (with DVP's `d8_virtualization_virtualmachine_*` names), the host's
capacity and allocatable (kube-state-metrics' `kube_node_status_*`) and its use (the
kubelet's `node_cpu_usage_seconds_total` / `node_memory_working_set_bytes`).

Scrapes read libvirt once (`getAllDomainStats`, one call for every domain). A publisher
thread samples the same figures every `interval` seconds and writes their rates onto the
Node (`controlplane.api.nodemetrics`), which is what `kubectl top node` and `dvp v top` show.

`dvp agent` serves the process's registry at `/metrics` on its console endpoint (HTTPS,
tokens checked with TokenReview), as a kubelet serves its metrics on port 10250.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
from aiohttp import web

from controlplane.api.nodemetrics import USAGE_ANNOTATION, NodeUsage, Usage
from controlplane.common.kube.client import NODES
from controlplane.common.metrics import CONTENT_TYPE, REGISTRY, Family
from controlplane.common.quantity import to_bytes
from controlplane.nodehandler.consoleauth import Denied, TokenReviewer, metrics_access
from controlplane.nodehandler.context import NodeContext

log = logging.getLogger(__name__)

_STATS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
          | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
_VM = ("name", "namespace", "node")
_PREFIX = "d8_virtualization_virtualmachine_"
# (stat key under block.N., metric suffix, help, scale)
_BLOCK = [("rd.bytes", "block_device_read_bytes_total", "Bytes read from a block device.", 1.0),
          ("wr.bytes", "block_device_write_bytes_total", "Bytes written to a block device.", 1.0),
          ("rd.reqs", "block_device_iops_read_total", "Read requests to a block device.", 1.0),
          ("wr.reqs", "block_device_iops_write_total", "Write requests to a block device.", 1.0),
          ("rd.times", "block_device_read_times_seconds_total", "Time spent reading a block device.", 1e-9),
          ("wr.times", "block_device_write_times_seconds_total", "Time spent writing a block device.", 1e-9)]
_NET = [("rx.bytes", "network_receive_bytes_total", "Bytes received on a network interface."),
        ("tx.bytes", "network_transmit_bytes_total", "Bytes sent on a network interface."),
        ("rx.pkts", "network_receive_packets_total", "Packets received on a network interface."),
        ("tx.pkts", "network_transmit_packets_total", "Packets sent on a network interface."),
        ("rx.drop", "network_receive_packets_dropped_total", "Received packets dropped."),
        ("tx.drop", "network_transmit_packets_dropped_total", "Sent packets dropped.")]


@dataclass(frozen=True)
class VMStats:
    namespace: str
    name: str
    stats: dict[str, Any]

    @property
    def cpu_seconds(self) -> float:
        return float(self.stats.get("cpu.time", 0)) / 1e9

    @property
    def memory_bytes(self) -> int:
        """The QEMU process's resident memory (the VM's working set on the host)."""
        return int(self.stats.get("balloon.rss", 0)) * 1024


def host_cpu_seconds(proc: Path = Path("/proc")) -> float:
    """CPU seconds the host spent busy (all CPUs; idle and iowait excluded), from /proc/stat."""
    fields = proc.joinpath("stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    busy = sum(values) - values[3] - values[4]
    return busy / 100.0  # USER_HZ


def host_memory_working_set(proc: Path = Path("/proc")) -> int:
    info = {}
    for line in proc.joinpath("meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        info[key] = int(rest.split()[0]) * 1024
    return info["MemTotal"] - info.get("MemAvailable", info.get("MemFree", 0))


class NodeMetrics:
    def __init__(self, ctx: NodeContext, *, interval: float = 10.0, proc: Path = Path("/proc")) -> None:
        self.ctx = ctx
        self.interval = interval
        self.proc = proc
        self._stop = threading.Event()

    def vm_stats(self) -> list[VMStats]:
        wanted = {self.ctx.domains.name_for(o["metadata"]["namespace"], o["metadata"]["name"]):
                  (o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.ctx.instances.list()}
        if not wanted:
            return []
        out = []
        try:
            records = self.ctx.domains.connect().getAllDomainStats(_STATS, 0)
        except libvirt.libvirtError as exc:
            log.warning("reading libvirt domain statistics: %s", exc)
            return []
        for dom, stats in records:
            key = wanted.get(dom.name())
            if key is not None:
                out.append(VMStats(key[0], key[1], stats))
        return out

    # -- scrape ---------------------------------------------------------------------------------
    def collect(self) -> Iterable[Family]:
        node = self.ctx.node
        fams: dict[str, Family] = {}

        def fam(suffix: str, typ: str, help: str, labels: tuple[str, ...] = _VM) -> Family:
            if suffix not in fams:
                fams[suffix] = Family(_PREFIX + suffix, typ, help, labels)
            return fams[suffix]

        for vm in self.vm_stats():
            base = (vm.name, vm.namespace, node)
            s = vm.stats
            fam("cpu_usage_milliseconds_total", "counter", "Total CPU time used by the virtual machine in "
                "milliseconds.").add(vm.cpu_seconds * 1000.0, *base)
            fam("memory_resident_bytes", "gauge", "Resident memory of the virtual machine on its host.").add(
                float(vm.memory_bytes), *base)
            fam("memory_size_bytes", "gauge", "Memory currently given to the virtual machine.").add(
                float(s.get("balloon.current", 0)) * 1024, *base)
            for i in range(int(s.get("block.count", 0))):
                dev = str(s.get(f"block.{i}.name", i))
                for key, suffix, help, scale in _BLOCK:
                    fam(suffix, "counter", help, (*_VM, "block_device_name")).add(
                        float(s.get(f"block.{i}.{key}", 0)) * scale, *base, dev)
            for i in range(int(s.get("net.count", 0))):
                dev = str(s.get(f"net.{i}.name", i))
                for key, suffix, help in _NET:
                    fam(suffix, "counter", help, (*_VM, "network")).add(float(s.get(f"net.{i}.{key}", 0)), *base, dev)
        return [*fams.values(), *self._node_families()]

    def _node_families(self) -> list[Family]:
        node, facts, config = self.ctx.node, self.ctx.facts, self.ctx.config
        labels = ("node", "resource", "unit")
        capacity = Family("kube_node_status_capacity", "gauge", "The capacity for different resources of a node.",
                          labels)
        allocatable = Family("kube_node_status_allocatable", "gauge",
                             "The allocatable for different resources of a node.", labels)
        capacity.add(float(facts.cpus), node, "cpu", "core")
        capacity.add(float(facts.memory_bytes), node, "memory", "byte")
        allocatable.add(float(max(facts.cpus - config.reserved_cpu, 0)), node, "cpu", "core")
        allocatable.add(float(max(facts.memory_bytes - to_bytes(config.reserved_memory), 0)), node, "memory", "byte")
        cpu = Family("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in "
                     "core-seconds.", ("node",))
        mem = Family("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes.", ("node",))
        try:
            cpu.add(host_cpu_seconds(self.proc), node)
            mem.add(float(host_memory_working_set(self.proc)), node)
        except (OSError, ValueError, KeyError, IndexError) as exc:
            log.warning("reading host usage under %s: %s", self.proc, exc)
        return [capacity, allocatable, cpu, mem]

    # -- usage for kubectl top ------------------------------------------------------------------
    def sample(self) -> tuple[float, float, dict[str, VMStats]]:
        return time.monotonic(), host_cpu_seconds(self.proc), {f"{v.namespace}/{v.name}": v for v in self.vm_stats()}

    def usage(self, before: tuple[float, float, dict[str, VMStats]],
              after: tuple[float, float, dict[str, VMStats]]) -> NodeUsage:
        window = max(after[0] - before[0], 1e-3)
        vms = {}
        for key, vm in after[2].items():
            prev = before[2].get(key)
            cpu = (vm.cpu_seconds - prev.cpu_seconds) / window if prev is not None else 0.0
            vms[key] = Usage(int(max(cpu, 0.0) * 1e9), vm.memory_bytes)
        node_cpu = max(after[1] - before[1], 0.0) / window
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return NodeUsage(stamp, round(window, 3), Usage(int(node_cpu * 1e9), host_memory_working_set(self.proc)), vms)

    def publish(self, usage: NodeUsage) -> None:
        self.ctx.kube.patch(NODES, self.ctx.node, {"metadata": {"annotations": {
            USAGE_ANNOTATION: usage.to_annotation()}}})

    def _run(self) -> None:
        before = None
        while not self._stop.is_set():
            try:
                after = self.sample()
                if before is not None:
                    self.publish(self.usage(before, after))
                before = after
            except Exception as exc:  # noqa: BLE001 - usage is best effort; the loop must go on
                log.warning("publishing node usage: %s", exc)
            self._stop.wait(self.interval if before is not None else 1.0)

    def start(self) -> None:
        REGISTRY.add_collector("nodehandler", self.collect)
        threading.Thread(target=self._run, name="node-usage", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        REGISTRY.remove_collector("nodehandler")


def handler(reviewer: TokenReviewer, node: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`GET /metrics` for the console endpoint: identities the API server authenticates and
    allows `get nodes/metrics` on this node (as a kubelet's), never other nodes."""
    access = metrics_access(node)

    async def metrics(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, reviewer.authorize, request.headers.get("Authorization"), access)
        except Denied as exc:
            return web.Response(status=exc.status, text=f"{exc}\n")
        return web.Response(body=REGISTRY.expose().encode(), headers={"Content-Type": CONTENT_TYPE})

    return metrics
