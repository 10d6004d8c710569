"""bench/migrate: one running VM moved live between two lab hosts by the node handler's live
migration, against plain `virsh migrate --live --copy-storage-all` of the same domain between the
same two hosts, in the same run.

Two lab hosts (tests/support/migratelab.py: own namespaces, own libvirtd listening on TCP, a
direct link), no shared storage, real QEMU (software emulation). The VM is the domain the node
handler builds (domainxml.py): 1 GiB RAM, the guest image's root volume and a 2 GiB data volume
with 500 MiB written, a NIC on each host's bridge (same name and gateway on both; dnsmasq on the
first). Neighbour caches are flushed before each leg. The guest is pinged (ICMP echo, tests/support/icmpprobe.py) every 20 ms from both hosts throughout; downtime is the longest gap
between two answers (from either host) during the move, so it includes one probe interval.

Both legs encrypt QEMU's stream and the disks' NBD copy (`VIR_MIGRATE_TLS`, `virsh migrate
--tls`), as installed hosts do.

- ours: `LiveMigration(...).run()` host 1 -> host 2 (target files made through the target's
  libvirtd, NBD disk copy, memory pre-copy, switch-over), wall time of the whole call;
- peer: `virsh migrate --live --p2p --copy-storage-all --persistent --undefinesource` of the same
  domain host 2 -> host 1 (the files it needs there are left from the leg before: virsh does not
  create them, so the peer's preparation is free), wall time of the command.

`--rounds` (3) such pairs on the one guest, ours first in each (before each later leg of ours the
files the peer's leg left on host 2 are removed: ours copies into new ones): one pair is at the
mercy of whatever else the machine runs at that moment, and the first leg right after boot meets
a guest still settling, so the medians are compared. Prints total time and downtime of both,
libvirt's own downtime figure, the ratios (targets: total at most 1.2x the peer's, downtime at
most the peer's + 50 ms), and each round with when our leg reached each phase. `--drain`: the
5-VM node drain at the node handler's level (bench/migrate_drain.py).

    python -m bench.migrate [--rounds N] [--drain] [-o json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any

import libvirt

from bench.report import Row, print_table
from controlplane.nodehandler.domains import Domains
from controlplane.nodehandler.migration import (
    LiveMigration,
    MigrationOptions,
    MigrationOutcome,
    MigrationProgress,
    MigrationTarget,
)
from nodeimage.guest import ensure_image
from tests.support.migratelab import BRIDGE, LAYOUT, PREFIX, LabDomain, MigrateLab
from tests.support.upgradelab import REPO, LabNode

MAC, IP = "52:54:00:6d:00:10", "10.77.0.10"
EVERY = 0.02


def _ping(node: LabNode, ip: str = IP) -> subprocess.Popen[bytes]:
    return subprocess.Popen(node.host.nsenter("env", f"PYTHONPATH={REPO}", str(REPO / ".venv/bin/python"), "-m",
                                              "tests.support.icmpprobe", "--every", str(EVERY), ip),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _fresh_neighbours(*nodes: LabNode) -> None:
    """Both legs start alike: no host remembers a guest's MAC on the bridge (otherwise the host a
    guest comes back to answers at once while the other has to resolve it first)."""
    for node in nodes:
        node.sh(f"ip neigh flush dev {BRIDGE}", check=False)


def _replies(procs: list[subprocess.Popen[bytes]]) -> list[float]:
    times: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=10)  # closing its stdin stops it
        times += [float(line) for line in out.split()]
    return sorted(times)


def _downtime(replies: list[float], start: float, end: float) -> float:
    """Longest gap between answers within [start, end] (the first answer before and after count)."""
    before = [t for t in replies if t < start]
    inside = [t for t in replies if start <= t <= end]
    after = [t for t in replies if t > end]
    points = before[-1:] + inside + after[:1]
    if len(points) < 2:
        return float("nan")
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def _libvirt_downtime(lab: MigrateLab, node: LabNode, uid: str) -> float | None:
    conn = lab.conn(node)
    try:
        stats = conn.lookupByUUIDString(uid).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        value = stats.get("downtime")
        return float(value) / 1000 if value is not None else None
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def _wait_answering(node: LabNode, ip: str = IP, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while node.sh(f"wget -qO- -T 2 http://{ip}/cgi-bin/uptime", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the guest did not answer HTTP at {ip} within {timeout:.0f}s")


@dataclass
class Leg:
    total: float
    down: float
    libvirt: float | None
    replies: int
    phases: dict[str, float] = field(default_factory=dict)
    """ours: seconds from the start to the first report of each phase (PreparingTarget, Migrating,
    SwitchedOver: the target resumed the guest, Completed)."""


def _probed(one: LabNode, two: LabNode, move: Callable[[], None]) -> tuple[float, float, float, int]:
    """Run `move` with both hosts pinging the guest: (start, end, longest gap, answers)."""
    _fresh_neighbours(one, two)
    probes = [_ping(one), _ping(two)]
    time.sleep(1)
    t0 = time.time()
    try:
        move()
    finally:
        t1 = time.time()
        time.sleep(2)
        replies = _replies(probes)
    return t0, t1, _downtime(replies, t0, t1), len(replies)


def _ours(lab: MigrateLab, dom: LabDomain, one: LabNode, two: LabNode) -> Leg:
    seen: dict[str, float] = {}
    outcome: list[MigrationOutcome] = []

    def stamp(progress: MigrationProgress) -> None:
        seen.setdefault(progress.phase, time.time())

    def move() -> None:
        outcome.append(LiveMigration(Domains(lab.uri(one), prefix=PREFIX, node=one.node), dom.uid,
                                     MigrationTarget(node=two.node, address=two.host.address, pki_dir=lab.pki_dir(one)),
                                     MigrationOptions(tls=True), on_progress=stamp,
                                     on_switched_over=lambda: stamp(MigrationProgress(phase="SwitchedOver"))).run())

    t0, t1, down, answers = _probed(one, two, move)
    if not outcome[0].succeeded:
        raise RuntimeError(f"our migration failed: {outcome[0].reason}: {outcome[0].message}")
    return Leg(t1 - t0, down, _libvirt_downtime(lab, two, dom.uid), answers, {k: v - t0 for k, v in seen.items()})


def _peer(lab: MigrateLab, dom: LabDomain, one: LabNode, two: LabNode) -> Leg:
    done: list[subprocess.CompletedProcess[str]] = []

    def move() -> None:
        done.append(two.sh(f"virsh -c qemu:///system migrate --live --p2p --tls --copy-storage-all --persistent "
                           f"--undefinesource {dom.name} {lab.uri(one)} tcp://{one.host.address} "
                           f"--listen-address {one.host.address}", check=False))

    t0, t1, down, answers = _probed(one, two, move)
    if done[0].returncode != 0:
        raise RuntimeError(f"virsh migrate failed: {done[0].stderr.strip()}")
    return Leg(t1 - t0, down, _libvirt_downtime(lab, one, dom.uid), answers)


def _median(values: Iterable[float]) -> float:
    """Of the legs whose probes got answers (a leg without any has NaN: it tells nothing)."""
    known = [v for v in values if not math.isnan(v)]
    return median(known) if known else math.nan


def run(rounds: int = 3) -> tuple[list[Row], dict[str, Any]]:
    image = ensure_image("cloud")
    lab = MigrateLab(hosts=2)
    ours: list[Leg] = []
    peer: list[Leg] = []
    try:
        one, two = lab.nodes
        lab.bridge(one, dhcp={MAC: IP})
        lab.bridge(two)
        dom = lab.boot_domain(one, image.qcow2, name="bench", memory="1Gi", data_size="2G", data_fill_mib=500,
                              nic=(MAC, IP))
        marker = lab.wait_marker(dom, one)
        if f"ip={IP}" not in marker:
            log = one.host.dir / "dnsmasq.log"
            raise RuntimeError(f"the guest got no lease for {IP}: {marker[-300:]}\ndnsmasq: "
                               f"{log.read_text()[-1000:] if log.exists() else '(no log)'}")
        _wait_answering(one)
        time.sleep(2)
        for i in range(rounds):
            if i:  # what the peer's leg left on host 2 (virsh keeps a source's files); ours copies into new ones
                two.sh(f"rm -rf {' '.join(dom.volumes)} {LAYOUT.instance_dir(dom.uid)}")
            ours.append(_ours(lab, dom, one, two))
            peer.append(_peer(lab, dom, one, two))
    finally:
        lab.close()
    total, down = median(x.total for x in ours), _median(x.down for x in ours)
    peer_total, peer_down = median(x.total for x in peer), _median(x.down for x in peer)
    rows = [
        Row(f"1 GiB RAM + 2 GiB disk (500 MiB written): total time, median of {rounds}", total, peer_total, "s", "lower"),
        Row(f"downtime: longest gap between pings ({EVERY * 1000:.0f} ms) during the move, median", down, peer_down,
            "s", "lower"),
    ]
    libvirt_ours = [x.libvirt for x in ours if x.libvirt is not None]
    libvirt_peer = [x.libvirt for x in peer if x.libvirt is not None]
    if libvirt_ours and libvirt_peer:
        rows.append(Row("downtime as libvirt reports it, median", median(libvirt_ours), median(libvirt_peer), "s",
                        "lower"))
    extra = {"total_vs_peer": total / peer_total, "downtime_minus_peer_ms": (down - peer_down) * 1000,
             "probes": {"ours": sum(x.replies for x in ours), "peer": sum(x.replies for x in peer)},
             "legs": {"ours": [asdict(x) for x in ours], "peer": [asdict(x) for x in peer]}}
    return rows, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.add_argument("--drain", action="store_true", help="the 5-VM drain instead (bench/migrate_drain.py)")
    parser.add_argument("--rounds", type=int, default=3, help="ours-then-peer rounds on the one guest (medians)")
    args = parser.parse_args()
    if args.drain:
        from bench.migrate_drain import main as drain_main

        drain_main(json_out=args.output == "json")
        return
    rows, extra = run(args.rounds)
    print_table("bench/migrate: one VM between two lab hosts, no shared storage (QEMU TCG)",
                "dvp live migration", "virsh migrate --live --copy-storage-all", rows,
                json_out=args.output == "json")
    if args.output == "table":
        print(f"total: {extra['total_vs_peer']:.2f}x the peer's (target <= 1.2x); downtime: "
              f"{extra['downtime_minus_peer_ms']:+.0f} ms vs the peer's (target <= +50 ms); "
              f"{extra['probes']['ours'] + extra['probes']['peer']} ping answers")
        for i, (o, p) in enumerate(zip(extra["legs"]["ours"], extra["legs"]["peer"], strict=True)):
            steps = ", ".join(f"{k} at {v:.2f}" for k, v in o["phases"].items())
            print(f"round {i + 1}: ours {o['total']:.2f} s ({steps}), down {o['down'] * 1000:.0f} ms; "
                  f"peer {p['total']:.2f} s, down {p['down'] * 1000:.0f} ms")
    else:
        print(json.dumps(extra))


if __name__ == "__main__":
    main()
