"""bench/migrate --drain: a host with 5 running VMs emptied one VM after another (as `dvp node
drain` does: one outgoing migration per node at a time) by the node handler's live migration,
against the same 5 domains moved back by plain `virsh migrate --live --copy-storage-all`, one after
another, in the same run. Each VM: 256 MiB RAM, the guest image's root volume and a 256 MiB data
volume with 64 MiB written; each pinged every 20 ms from both hosts (tests/support/icmpprobe.py).

Prints the whole drain's time and the worst and median per-VM downtime of both, with ratios.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from bench.migrate import _fresh_neighbours, _ping, _replies, _wait_answering
from bench.migrate_stats import longest_gap as _downtime
from bench.report import Row, print_table
from controlplane.nodehandler.domains import Domains
from controlplane.nodehandler.migration import LiveMigration, MigrationOptions, MigrationTarget
from nodeimage.guest import ensure_image
from tests.support.migratelab import PREFIX, LabDomain, MigrateLab
from tests.support.upgradelab import LabNode

VMS = [(f"52:54:00:6d:01:{i:02x}", f"10.77.0.{20 + i}") for i in range(5)]


def _leg(lab: MigrateLab, doms: list[LabDomain], src: LabNode, dst: LabNode, *,
         ours: bool) -> tuple[float, list[float]]:
    _fresh_neighbours(src, dst)
    probes = {ip: [_ping(src, ip), _ping(dst, ip)] for _, ip in VMS}
    time.sleep(1)
    windows: list[tuple[float, float]] = []
    t0 = time.time()
    for dom in doms:
        a = time.time()
        if ours:
            outcome = LiveMigration(Domains(lab.uri(src), prefix=PREFIX, node=src.node), dom.uid,
                                    MigrationTarget(node=dst.node, address=dst.host.address, pki_dir=lab.pki_dir(src)),
                                    MigrationOptions(tls=True)).run()
            if not outcome.succeeded:
                raise RuntimeError(f"our migration of {dom.name} failed: {outcome.reason}: {outcome.message}")
        else:
            done = src.sh(f"virsh -c qemu:///system migrate --live --p2p --tls --copy-storage-all --persistent "
                          f"--undefinesource {dom.name} {lab.uri(dst)} tcp://{dst.host.address} "
                          f"--listen-address {dst.host.address}", check=False)
            if done.returncode != 0:
                raise RuntimeError(f"virsh migrate of {dom.name} failed: {done.stderr.strip()}")
        windows.append((a, time.time()))
    total = time.time() - t0
    time.sleep(2)
    downs = [_downtime(_replies(probes[ip]), *window) for (_, ip), window in zip(VMS, windows, strict=True)]
    return total, downs


def run() -> tuple[list[Row], dict[str, Any]]:
    image = ensure_image("cloud")
    lab = MigrateLab(hosts=2)
    try:
        one, two = lab.nodes
        lab.bridge(one, dhcp=dict(VMS))
        lab.bridge(two)
        doms = [lab.boot_domain(one, image.qcow2, name=f"drain{i}", memory="256Mi", data_size="256M",
                                data_fill_mib=64, nic=nic) for i, nic in enumerate(VMS)]
        for dom, (_, ip) in zip(doms, VMS, strict=True):
            lab.wait_marker(dom, one)
            _wait_answering(one, ip)
        time.sleep(2)
        ours_total, ours_downs = _leg(lab, doms, one, two, ours=True)
        peer_total, peer_downs = _leg(lab, doms, two, one, ours=False)
    finally:
        lab.close()
    rows = [
        Row("drain of a host with 5 VMs (one at a time): total time", ours_total, peer_total, "s", "lower"),
        Row("worst per-VM downtime (20 ms pings)", max(ours_downs), max(peer_downs), "s", "lower"),
        Row("median per-VM downtime", statistics.median(ours_downs), statistics.median(peer_downs), "s", "lower"),
    ]
    return rows, {"ours_downtimes": ours_downs, "peer_downtimes": peer_downs}


def main(*, json_out: bool = False) -> None:
    rows, extra = run()
    print_table("bench/migrate --drain: 5 VMs off one lab host, no shared storage (QEMU TCG)",
                "dvp live migration", "virsh migrate --live --copy-storage-all", rows, json_out=json_out)
    print(json.dumps({k: [round(v, 3) for v in vs] for k, vs in extra.items()}))
