"""bench/e2e: apply-to-Running of VirtualMachines on the whole embedded platform, against plain
`virsh create` of the same domains, measured in the same run.

A real `dvp server` (API server, DVCR, controllers, in-process node handler) on the test
libvirtd (software emulation). For 1 VM (--rounds times) and for --many VMs applied at once, it
measures from `kubectl apply` of the VirtualMachines — their VirtualDisks already Ready (made
from the guest image and provisioned by an earlier VM that was then deleted) — to each VM's
`status.phase: Running`, seen through a watch. Everything on the way counts: API, VM controller
(class, IP address, placement, instance), node handler (seed, domain XML, start).
The peer: the very domain XML our node handler ran for each VM (same volume, seed and NIC),
started with `virsh create FILE` after our domains are gone, timed from the spawn of `virsh`
to its return (the domain is running then). p50 and p95 of each, and the ratio.

With `--hosts N` (N >= 2): the same on an installed cluster of N lab hosts, with the cross-host
VM network against host-to-host (bench/e2e_cluster.py).

    python -m bench.e2e [--rounds 5] [--many 20] [--hosts 1] [-o json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import libvirt
import yaml

from bench.guest_platform import guest_platform
from bench.peer_domain import peer_domain_xml
from bench.report import Row, percentile, print_table
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.common.kube.client import KubeClient
from tests.integration.quickstart.manifests import vd_from_image, vm
from tests.integration.quickstart.platform import Platform
from tests.services.libvirtd import domain_name_for

MEMORY = "128Mi"


class RunningTimes:
    """When each VirtualMachine was first seen Running (a watch thread, monotonic clock)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.times: dict[str, float] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                for event in self.kube.watch(VIRTUAL_MACHINES, "default", timeout_seconds=600, bookmarks=False):
                    obj = event["object"]
                    if (obj.get("status") or {}).get("phase") == "Running":
                        with self.lock:
                            self.times.setdefault(obj["metadata"]["uid"], time.monotonic())
            except Exception:  # noqa: BLE001 - reconnect; the bench fails by its own timeout
                time.sleep(0.2)


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


class Bench:
    def __init__(self, platform: Platform, work: Path) -> None:
        self.p = platform
        self.kube = KubeClient.from_kubeconfig(platform.server.kubeconfig)
        self.running = RunningTimes(self.kube)
        self.work = work
        self.round = 0

    def prepare_disks(self, names: list[str]) -> dict[str, str]:
        """Disks Ready on the node (a first VM provisions each), then those VMs deleted.
        Returns each VM's domain XML as our node handler ran it."""
        docs = [d for n in names for d in (vd_from_image(n, "bench-guest"), vm(n, n, memory=MEMORY, core_fraction="5%"))]
        self.p.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        for n in names:
            self.p.phase("vm", n, "Running", timeout=300)
        xmls = {n: self._keep_seed(n, self._domain(n).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) for n in names}
        self._delete_vms(names)
        return xmls

    def _keep_seed(self, name: str, xml: str) -> str:
        """The seed ISO goes with the instance: the peer boots a copy of it."""
        root = ET.fromstring(xml)
        for source in root.iter("source"):
            path = source.get("file", "")
            if path.endswith("seed.iso"):
                copy = self.work / f"{name}-seed.iso"
                shutil.copyfile(path, copy)
                source.set("file", str(copy))
        return ET.tostring(root, encoding="unicode")

    def _domain(self, vm_name: str) -> libvirt.virDomain:
        return next(d for d in self.p.domains() if d.name().endswith(f"default_{vm_name}"))

    def _delete_vms(self, names: list[str]) -> None:
        self.p.kubectl("delete", "vm", *names, "--wait=false")
        _wait(lambda: not any(self.p.get("vm", n) for n in names) and not self.p.domains(), 180, "VMs deleted")

    def ours(self, names: list[str]) -> list[float]:
        docs = [vm(n, n, memory=MEMORY, core_fraction="5%") for n in names]
        text = yaml.safe_dump_all(docs)
        t0 = time.monotonic()
        self.p.kubectl("apply", "-f", "-", input=text)
        uids = [self.p.get("vm", n)["metadata"]["uid"] for n in names]
        _wait(lambda: all(u in self.running.times for u in uids), 300, "VMs Running")
        durations = [self.running.times[u] - t0 for u in uids]
        self._delete_vms(names)
        return durations

    def peer(self, xmls: dict[str, str]) -> list[float]:
        self.round += 1
        files = []
        for i, (name, xml) in enumerate(xmls.items()):
            peer_name = domain_name_for(f"e2e-peer-{self.round}-{i}")
            path = self.work / f"{name}-{self.round}.xml"
            path.write_text(peer_domain_xml(xml, name=peer_name, serial_log=self.work / f"{name}-{self.round}.serial.log",
                                            vnc_socket=f"/run/dvp-tests/e2e-{i}.sock"))
            files.append((peer_name, path))

        def start(item: tuple[str, Path]) -> float:
            t0 = time.monotonic()
            out = subprocess.run(["virsh", "-q", "-c", "qemu:///system", "create", str(item[1])],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"virsh create {item[1]}: {out.stderr.strip()}")
            return time.monotonic() - t0

        with ThreadPoolExecutor(len(files)) as pool:
            durations = list(pool.map(start, files))
        for name, _ in files:
            self.p.conn.lookupByName(name).destroy()
        return durations


def run(rounds: int, many: int) -> list[Row]:
    with guest_platform("dvp-bench-e2e-") as (platform, work):
        bench = Bench(platform, work)
        one_xml = bench.prepare_disks(["e2e-one"])
        bench.ours(["e2e-one"])  # warm-up
        bench.peer(one_xml)
        one, one_peer = [], []
        for _ in range(rounds):
            one += bench.ours(["e2e-one"])
            one_peer += bench.peer(one_xml)
        names = [f"e2e-{i}" for i in range(many)]
        many_xml = bench.prepare_disks(names)
        lots = bench.ours(names)
        lots_peer = bench.peer(many_xml)
    ms = 1000.0
    return [
        Row("1 VM: apply -> Running, p50", percentile(one, 50) * ms, percentile(one_peer, 50) * ms, "ms", "lower"),
        Row("1 VM: apply -> Running, p95", percentile(one, 95) * ms, percentile(one_peer, 95) * ms, "ms", "lower"),
        Row(f"{many} VMs at once: apply -> Running, p50", percentile(lots, 50) * ms,
            percentile(lots_peer, 50) * ms, "ms", "lower"),
        Row(f"{many} VMs at once: apply -> Running, p95", percentile(lots, 95) * ms,
            percentile(lots_peer, 95) * ms, "ms", "lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the 1-VM measurement")
    parser.add_argument("--many", type=int, default=None, help="VMs applied at once [default: 20; 30 with --hosts]")
    parser.add_argument("--hosts", type=int, default=1,
                        help="1: one host (default); N >= 2: a cluster of 1 master + N-1 workers on lab hosts")
    parser.add_argument("--count", type=int, default=300, help="TCP connects per target (--hosts >= 2)")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    if args.hosts > 1:
        cluster_main(args.hosts, args.many or 30, args.count, json_out=args.output == "json")
        return
    rows = run(args.rounds, args.many or 20)
    print_table("bench/e2e: VirtualMachine applied (disk Ready) -> phase Running (software emulation)",
                "dvp (kubectl apply)", "virsh create (same XML)", rows, json_out=args.output == "json")


def cluster_main(hosts: int, many: int, count: int, *, json_out: bool) -> None:
    from bench.e2e_cluster import run as run_cluster

    rows, extra = run_cluster(hosts, many, count)
    print_table(f"bench/e2e --hosts {hosts}: VirtualMachines (disks Ready) -> phase Running on lab hosts, and the "
                "VM network (software emulation)", "dvp", "peer", rows, json_out=json_out)
    if json_out:
        print(json.dumps(extra))
        return
    print(f"placement: {extra['placement']}; A={extra['a']}, B={extra['b']}")
    print("\n".join(["where the time went (seconds; bench/e2e_timeline.py):", *extra["steps"]]))
    print(f"apply -> Running at p50: {extra['running_ratio_p50']:.2f}x the peer's speed (target >= 0.67); "
          f"VM / host-to-host connect time at p50: {extra['vm_vs_host_p50']:.2f}x (target within 1.5x)")


if __name__ == "__main__":
    main()
