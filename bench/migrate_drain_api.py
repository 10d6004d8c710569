"""bench/migrate --drain --via-api: `dvp node drain` of an installed host running 5 VMs (the
platform's whole path: cordon, an Evict VMOP per VM, one outgoing migration per node at a time,
the switch-overs and the routes), against `virsh migrate` of the same 5 domains between the same
two hosts one after another, in the same run.

The cluster is bench/migrate_api.py's (`dist/dvp install --config` onto a master and one worker,
lab hosts, software emulation). Each VM as the lab drain's (bench/migrate_drain.py): 256 MiB RAM,
one core at a 5% fraction (each lab host has this machine's 2 cores),
the guest image's root disk and a 256 MiB data disk of which its user data writes 64 MiB before
it says it is ready. The VMs prefer the worker; the worker is drained, so they move to the master.
During the drain the master pings every VM every 20 ms (through its /32 route to the worker while
the VM is there, on its own bridge after): a VM's downtime is the longest gap between answers.

The peer then moves the same domains back one after another with `virsh migrate` (the flags ours
uses; bench/migrate_api_peer.py), the platform's services stopped on both hosts first and the
files virsh needs on the target made before each move, untimed: its total is the sum of the five
`virsh migrate` times, as if each began the moment the one before returned. With the platform stopped
nothing moves the VMs' routes, so pings cannot follow the peer: per-VM downtime is compared by
libvirt's own figure (the completed job on the target), ours also shown as measured by pings.
The master still pings each VM while virsh moves it, as during ours (the same load on the guest
while its memory is copied).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.migrate import _answers, _ping
from bench.migrate_api import PORT, _wait
from bench.migrate_api_peer import libvirt_downtime, running_on, stop_platform, virsh_move
from bench.migrate_stats import longest_gap
from bench.report import Row, print_table
from tests.support.clusterlab import Cluster, start_cluster
from tests.support.clustervm import apply, dvp_on, guest, guest_vm, image_server, vm_status
from tests.support.dist import built_dvp

NS, COUNT = "bench-drain", 5
FILL = """#!/bin/sh
d=/dev/vdb
while [ ! -b $d ]; do sleep 1; done
head -c 1048576 /dev/urandom > /run/block
i=0; while [ $i -lt 64 ]; do cat /run/block; i=$((i+1)); done > $d
sync
echo filled > /www/filled.txt
"""


def _vms(cluster: Cluster, url: str) -> dict[str, str]:
    """The 5 VMs Running on the worker, filled; their IPs by name."""
    worker = cluster.workers[0]
    items: list[dict[str, Any]] = []
    for i in range(COUNT):
        one = guest_vm(NS, f"d{i}", url, prefer=worker.node)
        one[3]["spec"]["persistentVolumeClaim"]["size"] = "256Mi"
        one[4]["spec"]["provisioning"]["userData"] = FILL
        one[4]["spec"]["cpu"]["coreFraction"] = "5%"  # a lab host has this machine's 2 cores: room for all 5
        items += one if i == 0 else one[2:]
    apply(cluster, items)
    names = [f"d{i}" for i in range(COUNT)]

    def up() -> dict[str, dict[str, Any]] | None:
        st = {n: vm_status(cluster, NS, n) for n in names}
        return st if all(s.get("phase") == "Running" and s.get("ipAddress") for s in st.values()) else None

    running: dict[str, dict[str, Any]] = _wait(up, 900)
    ips = {n: str(s["ipAddress"]) for n, s in running.items()}

    def filled() -> bool:
        return all(guest(cluster, ip, "/filled.txt") == "filled\n" for ip in ips.values())

    _wait(filled, 600)
    where = {n: s.get("nodeName") for n, s in running.items()}
    if set(where.values()) != {worker.node}:
        raise RuntimeError(f"the VMs should all run on {worker.node} before the drain: {where}")
    return ips


def run() -> tuple[list[Row], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-drain-api-") as work:
        cluster = start_cluster(built_dvp(), Path(work), workers=1)
        try:
            return _measure(cluster)
        finally:
            cluster.close()


def _measure(cluster: Cluster) -> tuple[list[Row], dict[str, Any]]:
    master, worker = cluster.master, cluster.workers[0]
    with image_server(master, PORT) as url:
        ips = _vms(cluster, url)
    time.sleep(2)
    probes = {n: _ping(master, ip) for n, ip in ips.items()}
    time.sleep(1)
    t0 = time.time()
    done = dvp_on(master, "node", "drain", worker.node, "-o", "json", "--timeout", "600")
    t1 = time.time()
    pings = {n: longest_gap(_answers(p), t0, t1) for n, p in probes.items()}
    if done.returncode != 0:
        raise RuntimeError(f"dvp node drain failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    ours_libvirt = {n: libvirt_downtime(*running_on(cluster, f"{NS}_{n}")) for n in ips}
    stop_platform(cluster)
    peer = {n: virsh_move(cluster, f"{NS}_{n}", ping=ip, ping_from=("master",)) for n, ip in ips.items()}
    peer_total = sum(v.total for v in peer.values())  # back to back: none of the peer's set-up between them
    ours_down = [v for v in ours_libvirt.values() if v is not None]
    peer_down = [v.libvirt for v in peer.values() if v.libvirt is not None]
    rows = [
        Row(f"drain of a host with {COUNT} VMs: total time (dvp node drain; virsh one after another)", t1 - t0,
            peer_total, "s", "lower"),
        Row("worst per-VM downtime as libvirt reports it", max(ours_down), max(peer_down), "s", "lower"),
        Row("median per-VM downtime as libvirt reports it", statistics.median(ours_down),
            statistics.median(peer_down), "s", "lower"),
        Row("ours: worst per-VM downtime, longest gap between pings (20 ms) from the master",
            max(pings.values()), None, "s", "lower"),
        Row("ours: median per-VM downtime, longest ping gap", statistics.median(pings.values()), None, "s", "lower"),
    ]
    extra = {"drain": json.loads(done.stdout) if done.stdout.strip().startswith("{") else done.stdout[-2000:],
             "ping_downtimes": pings, "libvirt_downtimes": ours_libvirt,
             "peer_legs": {n: round(v.total, 3) for n, v in peer.items()}}
    return rows, extra


def main(*, json_out: bool = False) -> None:
    rows, extra = run()
    print_table(f"bench/migrate --drain --via-api: {COUNT} VMs off an installed host (QEMU TCG)",
                "dvp node drain", "virsh migrate, one after another", rows, json_out=json_out)
    print(json.dumps(extra, default=str))
