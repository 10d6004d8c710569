"""bench/migrate: one running VM moved live between two lab hosts by the node handler's live
migration, against plain `virsh migrate --live --copy-storage-all` of the same domain between the
same two hosts, in the same run.

Two lab hosts (tests/support/migratelab.py: own namespaces, own libvirtd listening on TCP, a
direct link), no shared storage, real QEMU (software emulation). The VM is the domain the node
handler builds (domainxml.py): 1 GiB RAM, the guest image's root volume and a 2 GiB data volume
with 500 MiB written, a NIC on each host's bridge (same name and gateway on both; dnsmasq on the
first). Neighbour caches are flushed before each leg. The guest is pinged (ICMP echo, tests/support/icmpprobe.py) every 20 ms from both hosts throughout; downtime is the longest gap
between two answers (from either host) during the move, so it includes one probe interval.

- ours: `LiveMigration(...).run()` host 1 -> host 2 (target files made through the target's
  libvirtd, NBD disk copy, memory pre-copy, switch-over), wall time of the whole call;
- peer: `virsh migrate --live --p2p --copy-storage-all --persistent --undefinesource` of the same
  domain host 2 -> host 1 (the files it needs there are left from the first leg: virsh does not
  create them, so the peer's preparation is free), wall time of the command.

Prints total time and downtime of both, libvirt's own downtime figure, and the ratios (targets:
total at most 1.2x the peer's, downtime at most the peer's + 50 ms). `--drain`: the 5-VM node
drain at the node handler's level (bench/migrate_drain.py).

    python -m bench.migrate [--drain] [-o json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from typing import Any

import libvirt

from bench.report import Row, print_table
from controlplane.nodehandler.domains import Domains
from controlplane.nodehandler.migration import LiveMigration, MigrationTarget
from nodeimage.guest import ensure_image
from tests.support.migratelab import BRIDGE, PREFIX, MigrateLab
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


def run() -> tuple[list[Row], dict[str, Any]]:
    image = ensure_image("cloud")
    lab = MigrateLab(hosts=2)
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

        _fresh_neighbours(one, two)
        probes = [_ping(one), _ping(two)]
        time.sleep(1)
        t0 = time.time()
        outcome = LiveMigration(Domains(lab.uri(one), prefix=PREFIX, node=one.node), dom.uid,
                                MigrationTarget(node=two.node, address=two.host.address, pki_dir=lab.pki_dir(one))).run()
        t1 = time.time()
        time.sleep(2)
        ours_replies = _replies(probes)
        if not outcome.succeeded:
            raise RuntimeError(f"our migration failed: {outcome.reason}: {outcome.message}")
        ours_total, ours_down = t1 - t0, _downtime(ours_replies, t0, t1)
        ours_libvirt = _libvirt_downtime(lab, two, dom.uid)

        _fresh_neighbours(one, two)
        probes = [_ping(one), _ping(two)]
        time.sleep(1)
        t0 = time.time()
        done = two.sh(f"virsh -c qemu:///system migrate --live --p2p --copy-storage-all --persistent --undefinesource "
                      f"{dom.name} {lab.uri(one)} tcp://{one.host.address} --listen-address {one.host.address}",
                      check=False)
        t1 = time.time()
        time.sleep(2)
        peer_replies = _replies(probes)
        if done.returncode != 0:
            raise RuntimeError(f"virsh migrate failed: {done.stderr.strip()}")
        peer_total, peer_down = t1 - t0, _downtime(peer_replies, t0, t1)
        peer_libvirt = _libvirt_downtime(lab, one, dom.uid)
    finally:
        lab.close()
    rows = [
        Row("1 GiB RAM + 2 GiB disk (500 MiB written): total time", ours_total, peer_total, "s", "lower"),
        Row(f"downtime: longest gap between pings ({EVERY * 1000:.0f} ms) during the move", ours_down, peer_down, "s",
            "lower"),
    ]
    if ours_libvirt is not None and peer_libvirt is not None:
        rows.append(Row("downtime as libvirt reports it", ours_libvirt, peer_libvirt, "s", "lower"))
    extra = {"total_vs_peer": ours_total / peer_total, "downtime_minus_peer_ms": (ours_down - peer_down) * 1000,
             "probes": {"ours": len(ours_replies), "peer": len(peer_replies)},
             "ours_outcome": {"reason": str(outcome.reason), "downtime_ms": outcome.downtime_ms}}
    return rows, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.add_argument("--drain", action="store_true", help="the 5-VM drain instead (bench/migrate_drain.py)")
    args = parser.parse_args()
    if args.drain:
        from bench.migrate_drain import main as drain_main

        drain_main(json_out=args.output == "json")
        return
    rows, extra = run()
    print_table("bench/migrate: one VM between two lab hosts, no shared storage (QEMU TCG)",
                "dvp live migration", "virsh migrate --live --copy-storage-all", rows,
                json_out=args.output == "json")
    if args.output == "table":
        print(f"total: {extra['total_vs_peer']:.2f}x the peer's (target <= 1.2x); downtime: "
              f"{extra['downtime_minus_peer_ms']:+.0f} ms vs the peer's (target <= +50 ms); "
              f"{extra['probes']['ours'] + extra['probes']['peer']} ping answers")
    else:
        print(json.dumps(extra))


if __name__ == "__main__":
    main()
