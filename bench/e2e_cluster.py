"""bench/e2e --hosts N: apply-to-Running of many VirtualMachines at once on an installed cluster of
lab hosts, against plain `virsh create` of the same domains on the same hosts, and the cross-host
VM network's TCP connect time against host-to-host, all in the same run.

The cluster is installed the way users install it (tests/support/clusterlab.py: `dist/dvp
install --config` onto 1 master and N-1 workers, lab hosts with their own namespaces and
libvirtd on one LAN, software emulation). The guest image is served over HTTP from the master
and imported into DVCR as the VirtualImage `bench-guest`.

- Disks: --many VirtualDisks from the image, made Ready by a first VM each (the scheduler spreads
  them over the nodes; local disks keep each VM on its node). Each VM's node and the domain XML
  its host's libvirt ran (`virsh dumpxml --inactive`) are kept, with a copy of its seed; then the
  VMs are deleted.
- ours: all --many VirtualMachines in one `kubectl apply`, timed per VM to `status.phase:
  Running` seen through a watch (API, VM controller, placement, each node's node handler).
- peer: the same XMLs (own names, seed copies, serial logs and VNC sockets) started with `virsh
  create` on their own hosts, all at once, each timed inside its host from the spawn of `virsh`
  to its return. p50 and p95 of both, and the ratio (target >= 0.67).
- network: one VM on worker A; from another host B, TCP connect times (SYN to SYN-ACK, kernels
  only; bench/vmnet.py's probe) to the VM and to host A's node handler port, alternating; at the
  same time from A to its own VM. Target: the VM within 1.5x of host-to-host.

    python -m bench.e2e --hosts 3 [--many 30] [--count 300] [-o json]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from bench.e2e import MEMORY, RunningTimes, _wait
from bench.e2e_timeline import Timeline, report
from bench.peer_domain import peer_domain_xml
from bench.report import Row, percentile
from bench.vmnet import PROBE
from controlplane.common.kube.client import KubeClient
from nodeimage.guest import ensure_image
from tests.integration.quickstart.manifests import vd_from_image, vi_http, vm
from tests.support.clusterlab import Cluster, start_cluster
from tests.support.dist import built_dvp
from tests.support.routelab import wait_http
from tests.support.upgradelab import LabNode

IMAGE_PORT = 18081
AGENT_PORT = 10250
CORE_FRACTION = "5%"
VIRSH = "virsh -q -c qemu:///system"


class ClusterBench:
    def __init__(self, cluster: Cluster, work: Path) -> None:
        self.cluster = cluster
        self.work = work
        self.kube = KubeClient.from_kubeconfig(cluster.kubeconfig)
        self.running = RunningTimes(self.kube)
        self.timeline = Timeline(self.kube)
        self.steps: list[str] = []
        """The last `ours` run's per-step times (bench/e2e_timeline.py)."""
        self.by_node = {n.node: n for n in cluster.nodes}

    def kubectl_json(self, *args: str) -> Any:
        return self.cluster.kubectl_json(*args)

    def apply(self, docs: list[dict[str, Any]]) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), timeout=300)

    def statuses(self, names: list[str]) -> dict[str, dict[str, Any]]:
        items = self.kubectl_json("get", "vm")["items"]
        return {i["metadata"]["name"]: i.get("status") or {} for i in items if i["metadata"]["name"] in names}

    def import_image(self) -> None:
        image = ensure_image("cloud").qcow2
        master = self.cluster.master
        subprocess.Popen(master.host.nsenter("python3", "-m", "http.server", "--bind", master.host.address,
                                             "--directory", str(image.parent), str(IMAGE_PORT)),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # dies with the host
        self.apply([vi_http("bench-guest", f"http://{master.host.address}:{IMAGE_PORT}/{image.name}")])
        _wait(lambda: self.kubectl_json("get", "vi", "bench-guest").get("status", {}).get("phase") == "Ready", 300,
              "VirtualImage bench-guest Ready")

    def prepare_disks(self, names: list[str]) -> dict[str, tuple[LabNode, str]]:
        """Disks Ready where the scheduler put their first VM, then those VMs deleted. Returns
        each VM's host and the domain XML its libvirt ran (the seed pointing at a copy)."""
        docs = [d for n in names for d in (vd_from_image(n, "bench-guest"),
                                           vm(n, n, memory=MEMORY, core_fraction=CORE_FRACTION))]
        self.apply(docs)
        _wait(lambda: [s.get("phase") for s in self.statuses(names).values()] == ["Running"] * len(names), 900,
              f"{len(names)} VMs Running")
        out = {}
        for name, st in self.statuses(names).items():
            node = self.by_node[st["nodeName"]]
            domain = next(d for d in self.domains(node) if d.endswith(f"default_{name}"))
            xml = node.sh(f"{VIRSH} dumpxml --inactive {domain}").stdout
            out[name] = (node, self._keep_seed(node, name, xml))
        self.delete_vms(names)
        return out

    def _keep_seed(self, node: LabNode, name: str, xml: str) -> str:
        """The seed ISO lives in the instance's directory inside the host: the peer boots a copy
        (in the shared work directory, which every host sees at the same path)."""
        root = ET.fromstring(xml)
        for source in root.iter("source"):
            path = source.get("file", "")
            if path.endswith("seed.iso"):
                copy = self.work / f"{name}-seed.iso"
                node.sh(f"cp {path} {copy}")
                source.set("file", str(copy))
        return ET.tostring(root, encoding="unicode")

    @staticmethod
    def domains(node: LabNode) -> list[str]:
        return [d for d in node.sh(f"{VIRSH} list --all --name").stdout.split() if d.startswith("dvp-")]

    def delete_vms(self, names: list[str]) -> None:
        self.cluster.kubectl("delete", "vm", *names, "--wait=false")
        _wait(lambda: not self.statuses(names) and not any(self.domains(n) for n in self.cluster.nodes), 300,
              "VMs deleted and their domains gone")

    def ours(self, names: list[str]) -> tuple[list[float], dict[str, str]]:
        docs = [vm(n, n, memory=MEMORY, core_fraction=CORE_FRACTION) for n in names]
        text = yaml.safe_dump_all(docs)
        self.timeline.forget(names)
        wall0, t0 = time.time(), time.monotonic()
        self.cluster.kubectl("apply", "-f", "-", input=text, timeout=300)
        applied = time.time() - wall0
        uids = [self.kubectl_json("get", "vm", n)["metadata"]["uid"] for n in names]
        _wait(lambda: all(u in self.running.times for u in uids), 900, "VMs Running")
        durations = [self.running.times[u] - t0 for u in uids]
        placed = {n: str(s.get("nodeName")) for n, s in self.statuses(names).items()}
        for name, node in placed.items():
            domain = next((d for d in self.domains(self.by_node[node]) if d.endswith(f"default_{name}")), None)
            if domain is not None:
                log = self.by_node[node].sh(f"cat /var/log/libvirt/qemu/{domain}.log", check=False).stdout
                self.timeline.note_qemu_log(name, log)
        self.steps = [f"kubectl apply of the {len(names)} VMs returned after {applied:.2f} s",
                      *report(self.timeline, names, wall0)]
        self.delete_vms(names)
        return durations, placed

    def peer(self, xmls: dict[str, tuple[LabNode, str]]) -> list[float]:
        jobs = []
        for i, (name, (node, xml)) in enumerate(xmls.items()):
            path = self.work / f"{name}-peer.xml"
            path.write_text(peer_domain_xml(xml, name=f"e2e-peer-{i}", serial_log=self.work / f"{name}-peer.log",
                                            vnc_socket=str(self.work / f"p{i}.vnc")))
            jobs.append((node, f"e2e-peer-{i}", path))

        def start(job: tuple[LabNode, str, Path]) -> float:
            node, _, path = job
            done = node.sh(f"t0=$(date +%s%N); {VIRSH} create {path} >/dev/null; rc=$?; t1=$(date +%s%N); "
                           f"echo $((t1 - t0)); exit $rc")
            return int(done.stdout.split()[-1]) / 1e9

        try:
            with ThreadPoolExecutor(len(jobs)) as pool:
                durations = list(pool.map(start, jobs))
        finally:
            for node, domain, _ in jobs:
                node.sh(f"{VIRSH} destroy {domain}", check=False)
        return durations

    def network(self, name: str, a: LabNode, b: LabNode, count: int) -> dict[str, list[float]]:
        """VM `name` (its disk on A) started again; connect times from B to it and to host A, and
        from A to it, at the same time (the guest equally busy for both)."""
        self.apply([vm(name, name, memory=MEMORY, core_fraction=CORE_FRACTION)])
        _wait(lambda: self.statuses([name]).get(name, {}).get("ipAddress"), 600, f"VM {name} has an address")
        st = self.statuses([name])[name]
        if st.get("nodeName") != a.node:
            raise RuntimeError(f"VM {name} runs on {st.get('nodeName')}, not on {a.node} where its disk is")
        ip = str(st["ipAddress"])
        wait_http(b, f"http://{ip}/", what=f"the VM on {a.name}", timeout=600)
        times: dict[str, list[float]] = {}
        probes = [subprocess.Popen(where.host.nsenter(sys.executable, "-c", PROBE, json.dumps(targets), str(count)),
                                   stdout=subprocess.PIPE, text=True)
                  for where, targets in ((b, {"vm": [ip, 80], "host": [a.host.address, AGENT_PORT]}),
                                         (a, {"local": [ip, 80]}))]
        for probe in probes:
            out, _ = probe.communicate()
            if probe.returncode != 0:
                raise RuntimeError(f"connect-time probe failed (exit {probe.returncode})")
            times.update(json.loads(out))
        self.delete_vms([name])
        return times


def run(hosts: int, many: int, count: int) -> tuple[list[Row], dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-e2e-cluster-"))
    work.chmod(0o755)
    cluster = start_cluster(built_dvp(), work / "cluster", workers=hosts - 1)
    try:
        bench = ClusterBench(cluster, work)
        bench.import_image()
        names = [f"e2e-{i}" for i in range(many)]
        xmls = bench.prepare_disks(names)
        lots, placed = bench.ours(names)
        lots_peer = bench.peer(xmls)
        a = cluster.workers[0]
        b = next(n for n in cluster.nodes if n is not a and n.role == "worker") if hosts > 2 else cluster.master
        on_a = next((n for n, (node, _) in xmls.items() if node is a), None)
        if on_a is None:
            raise RuntimeError(f"no VM was placed on {a.node}: {placed}")
        net = bench.network(on_a, a, b, count)
    finally:
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    ms = 1000.0
    vm_t, host_t, local_t = net["vm"], net["host"], net["local"]
    rows = [
        Row(f"{many} VMs at once on {hosts} hosts: kubectl apply -> Running vs virsh create, p50",
            percentile(lots, 50) * ms, percentile(lots_peer, 50) * ms, "ms", "lower"),
        Row(f"{many} VMs at once on {hosts} hosts: kubectl apply -> Running vs virsh create, p95",
            percentile(lots, 95) * ms, percentile(lots_peer, 95) * ms, "ms", "lower"),
        Row("TCP connect from B: to the VM on A vs to host A, p50", percentile(vm_t, 50), percentile(host_t, 50), "ms",
            "lower"),
        Row("TCP connect from B: to the VM on A vs to host A, p95", percentile(vm_t, 95), percentile(host_t, 95), "ms",
            "lower"),
        Row("TCP connect to the VM: from B (routed) vs from A (its host), p50", percentile(vm_t, 50),
            percentile(local_t, 50), "ms", "lower"),
    ]
    extra = {"hosts": hosts, "many": many, "placement": dict(Counter(placed.values())), "a": a.node, "b": b.node,
             "running_ratio_p50": percentile(lots_peer, 50) / percentile(lots, 50),
             "vm_vs_host_p50": percentile(vm_t, 50) / percentile(host_t, 50), "probes": count,
             "steps": bench.steps}
    return rows, extra
