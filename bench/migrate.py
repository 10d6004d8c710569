"""bench/migrate: one running VM moved live between two lab hosts by the node handler's live
migration, against plain `virsh migrate --live --copy-storage-all` of the same domain between the
same two hosts, in the same run.

Two lab hosts (tests/support/migratelab.py: own namespaces, own libvirtd listening on TLS, a
direct link), no shared storage, real QEMU (software emulation). The VM is the domain the node
handler builds (domainxml.py): 1 GiB RAM, the guest image's root volume and a 2 GiB data volume
with 500 MiB written, a NIC on each host's bridge (same name and gateway on both; dnsmasq on the
first). Neighbour caches are flushed before each leg. The guest is pinged (ICMP echo,
tests/support/icmpprobe.py) every 20 ms from both hosts throughout; downtime is the longest gap
between two answers (from either host) during the move, so it includes one probe interval.

Both legs encrypt QEMU's stream and the disks' NBD copy (`VIR_MIGRATE_TLS`, `virsh migrate
--tls`), as installed hosts do.

- ours: `LiveMigration(...).run()` (target files made through the target's libvirtd, NBD disk
  copy, memory pre-copy, switch-over), wall time of the whole call;
- peer: `virsh migrate --live --p2p --copy-storage-all --persistent --undefinesource
  --abort-on-error --tls --migrate-disks <the same disks>` of the same domain: the flags ours uses,
  without the destination XML (it names the target node: only a platform has one). Virsh does not
  create the files it needs on the target: the directories and read-only files are left from an
  earlier leg, and the disks it copies are made new, empty qcow2 files of the same size before the
  leg, untimed (so the peer's preparation is free, but it copies into files as fresh as ours);
  before each leg of ours, what an earlier leg left on its target is removed (ours copies into new
  files).

`--rounds` (6) rounds on the one guest, each a leg of both sides in opposite directions; odd
rounds run ours host 1 -> 2 then the peer back, even rounds the peer 1 -> 2 then ours back, so each
side moves the guest both ways equally often and goes first equally often. Before them, ours
moves the guest there and back untimed (leaving the directories virsh needs on both hosts): the
first move of a freshly booted guest is slower for either side (5.1 s, then 3.4, 2.5 and 3.0 s
for virsh alone) and would otherwise always be one of ours. Medians are compared (one leg is at
the mercy of whatever else the machine runs at that moment). Prints total time and
downtime of both, libvirt's own downtime figure, the ratios (targets: total at most 1.2x the
peer's, downtime at most the peer's + 50 ms), the medians per direction, and each leg with where
its gap went (bench/migrate_stats.py: the source's last answer before the pause, pause to
resume by libvirt's lifecycle events, resume to the target's first answer) and, for ours, when it
reached each phase. `--drain`: the 5-VM node drain at the node handler's level
(bench/migrate_drain.py).

`--via-api`: the same number of legs as a user drives them, VMOP Migrate on a platform installed onto
two other lab hosts (bench/migrate_api.py), each its own row with its ratio to the peer's legs, and
then `virsh migrate` of that same domain between those same hosts (bench/migrate_api_peer.py), the
peer the API legs' total time is held to.

`--drain --via-api`: `dvp node drain` of an installed host with 5 VMs against virsh moving the
same domains (bench/migrate_drain_api.py).

    python -m bench.migrate [--rounds N] [--via-api] [--drain] [-o json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import libvirt

from bench.migrate_stats import Leg, longest_gap, split, summarize
from bench.report import Row, print_table
from controlplane.nodehandler.domains import Domains, _ensure_event_loop
from controlplane.nodehandler.migration import (
    LiveMigration,
    MigrationOptions,
    MigrationOutcome,
    MigrationProgress,
    MigrationTarget,
)
from controlplane.nodehandler.migration_plan import plan_migration
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


def _answers(proc: subprocess.Popen[bytes]) -> list[float]:
    out, _ = proc.communicate(timeout=10)  # closing its stdin stops it
    return sorted(float(line) for line in out.split())


def _replies(procs: list[subprocess.Popen[bytes]]) -> list[float]:
    return sorted(t for proc in procs for t in _answers(proc))


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


class _Switch:
    """When the source paused the guest and the target resumed it, from each host's libvirtd's
    lifecycle events (the same watch for both sides' legs)."""

    def __init__(self, lab: MigrateLab, uid: str, src: LabNode, dst: LabNode) -> None:
        self.uid = uid
        self.paused_at: float | None = None
        self.resumed_at: float | None = None
        self._watches: list[tuple[libvirt.virConnect, int]] = []
        for node, event, detail, slot in (
                (src, libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED, "paused_at"),
                (dst, libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED, "resumed_at")):
            conn = lab.conn(node)
            watch = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._seen,
                                                (event, detail, slot))
            self._watches.append((conn, watch))

    def _seen(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int,
              want: tuple[int, int, str]) -> None:
        now = time.time()
        if (event, detail) == want[:2] and getattr(self, want[2]) is None and dom.UUIDString() == self.uid:
            setattr(self, want[2], now)

    def close(self) -> None:
        for conn, watch in self._watches:
            with contextlib.suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(watch)
            conn.close()


def _probed(lab: MigrateLab, dom: LabDomain, src: LabNode, dst: LabNode, side: str, move: Callable[[], None]) -> Leg:
    """Run `move` with both hosts pinging the guest and both libvirtds watched."""
    direction = "1->2" if src is lab.nodes[0] else "2->1"
    _fresh_neighbours(src, dst)
    probes = [_ping(src), _ping(dst)]
    switch = _Switch(lab, dom.uid, src, dst)
    time.sleep(1)
    t0 = time.time()
    try:
        move()
    finally:
        t1 = time.time()
        time.sleep(2)
        source, target = _answers(probes[0]), _answers(probes[1])
        switch.close()
    before, paused, after = split(source, target, switch.paused_at, switch.resumed_at)
    return Leg(side=side, direction=direction, total=t1 - t0,
               down=longest_gap(source + target, t0, t1), libvirt=_libvirt_downtime(lab, dst, dom.uid),
               answers=len(source) + len(target), before=before, paused=paused, after=after,
               phases={} if switch.resumed_at is None else {"target resumed the guest": switch.resumed_at - t0,
                                                            "returned": t1 - t0})


def _ours(lab: MigrateLab, dom: LabDomain, src: LabNode, dst: LabNode) -> Leg:
    seen: dict[str, float] = {}
    outcome: list[MigrationOutcome] = []

    def stamp(progress: MigrationProgress) -> None:
        seen.setdefault(progress.phase, time.time())

    def move() -> None:
        seen["start"] = time.time()
        outcome.append(LiveMigration(Domains(lab.uri(src), prefix=PREFIX, node=src.node), dom.uid,
                                     MigrationTarget(node=dst.node, address=dst.host.address, pki_dir=lab.pki_dir(src)),
                                     MigrationOptions(tls=True), on_progress=stamp,
                                     on_switched_over=lambda: stamp(MigrationProgress(phase="SwitchedOver"))).run())

    dst.sh(f"rm -rf {' '.join(dom.volumes)} {LAYOUT.instance_dir(dom.uid)}")  # an earlier leg's: ours makes new ones
    leg = _probed(lab, dom, src, dst, "ours", move)
    if not outcome[0].succeeded:
        raise RuntimeError(f"our migration failed: {outcome[0].reason}: {outcome[0].message}")
    start = seen.pop("start")
    leg.phases = dict(sorted({**leg.phases, **{k: v - start for k, v in seen.items()}}.items(), key=lambda kv: kv[1]))
    return leg


def _fresh_copies(dom: LabDomain, src: LabNode, dst: LabNode) -> None:
    """The peer's target disks made empty qcow2 files of the source's virtual sizes, as ours makes
    them (migration_target.py), untimed: a file an earlier leg filled would take the copy's writes
    into clusters already allocated, which ours, copying into new files, never has."""
    for path in (d.path for d in plan_migration(dom.xml).copied):
        info = json.loads(src.sh(f"qemu-img info -U --output=json {path}").stdout)
        dst.sh(f"rm -f {path} && qemu-img create -q -f qcow2 {path} {int(info['virtual-size'])}")


def _peer(lab: MigrateLab, dom: LabDomain, src: LabNode, dst: LabNode) -> Leg:
    done: list[subprocess.CompletedProcess[str]] = []
    disks = ",".join(d.dev for d in plan_migration(dom.xml).copied)
    _fresh_copies(dom, src, dst)

    def move() -> None:
        done.append(src.sh(f"virsh -c qemu:///system migrate --live --p2p --copy-storage-all --persistent "
                           f"--undefinesource --abort-on-error --tls --migrate-disks {disks} {dom.name} {lab.uri(dst)} "
                           f"tcp://{dst.host.address} --listen-address {dst.host.address}", check=False))

    leg = _probed(lab, dom, src, dst, "peer", move)
    if done[0].returncode != 0:
        raise RuntimeError(f"virsh migrate failed: {done[0].stderr.strip()}")
    return leg


def run(rounds: int = 6, *, via_api: bool = False, dvp: Path | None = None) -> tuple[list[Row], dict[str, Any]]:
    image = ensure_image("cloud")
    _ensure_event_loop()  # before the lab's connections: the switch watch needs their events
    lab = MigrateLab(hosts=2)
    legs: list[Leg] = []
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
        for src, dst in ((one, two), (two, one)):  # untimed: a freshly booted guest's first move is slower
            _ours(lab, dom, src, dst)
        for i in range(rounds):  # the guest is on host 1 at the start of every round
            if i % 2 == 0:
                legs += [_ours(lab, dom, one, two), _peer(lab, dom, two, one)]
            else:
                legs += [_peer(lab, dom, one, two), _ours(lab, dom, two, one)]
    finally:
        lab.close()
    if via_api:  # after the lab is gone: one set of lab hosts at a time
        from bench.migrate_api import run_via_api

        with tempfile.TemporaryDirectory(prefix="bench-migrate-api-") as work:
            legs += run_via_api(rounds, Path(work), dvp=dvp)
    ours, peer = summarize(legs, "ours"), summarize(legs, "peer")
    rows = [
        Row(f"1 GiB RAM + 2 GiB disk (500 MiB written): total time, median of {ours.legs}", ours.total, peer.total, "s",
            "lower"),
        Row(f"downtime: longest gap between pings ({EVERY * 1000:.0f} ms) during the move, median", ours.down,
            peer.down, "s", "lower"),
        Row("downtime as libvirt reports it, median", ours.libvirt, peer.libvirt, "s", "lower"),
        Row("target resumed the guest -> its first answer from there, median", ours.after, peer.after, "s", "lower"),
    ]
    sides = ("ours", "peer", "api", "api-peer") if via_api else ("ours", "peer")
    if via_api:
        api, same = summarize(legs, "api"), summarize(legs, "api-peer")
        rows += [Row(f"via the API (VMOP Migrate, installed 2-host platform): total time, median of {api.legs}",
                     api.total, peer.total, "s", "lower"),
                 Row("via the API: downtime (longest ping gap), median", api.down, peer.down, "s", "lower"),
                 Row("via the API: downtime as libvirt reports it, median", api.libvirt, peer.libvirt, "s", "lower"),
                 Row("via the API: target resumed the guest -> first answer, median", api.after, peer.after, "s",
                     "lower"),
                 Row(f"via the API: total time vs virsh migrate of the same domain between the same installed "
                     f"hosts (platform stopped), median of {same.legs}", api.total, same.total, "s", "lower"),
                 Row("via the API: libvirt's downtime vs that same-domain peer, median", api.libvirt, same.libvirt,
                     "s", "lower")]
    directions = {f"{side} {d}": asdict(summarize(legs, side, d)) for side in sides for d in ("1->2", "2->1")}
    extra = {"total_vs_peer": ours.total / peer.total, "downtime_minus_peer_ms": (ours.down - peer.down) * 1000,
             **({"api_total_vs_peer": api.total / peer.total, "api_downtime_minus_peer_ms": (api.down - peer.down) * 1000,
                 "api_total_vs_same_domain_peer": api.total / same.total} if via_api else {}),
             "directions": directions, "legs": [asdict(x) for x in legs]}
    return rows, extra


def _ms(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value * 1000:.0f}"


def _print_details(extra: dict[str, Any]) -> None:
    print(f"total: {extra['total_vs_peer']:.2f}x the peer's (target <= 1.2x); downtime: "
          f"{extra['downtime_minus_peer_ms']:+.0f} ms vs the peer's (target <= +50 ms)")
    if "api_total_vs_peer" in extra:
        print(f"via the API: total {extra['api_total_vs_peer']:.2f}x the peer's; downtime "
              f"{extra['api_downtime_minus_peer_ms']:+.0f} ms vs the peer's (api 1->2: from the cluster's master); "
              f"total {extra['api_total_vs_same_domain_peer']:.2f}x virsh's of the same domain on the same hosts "
              f"(target <= 1.2x)")
    print("medians per direction (ms; total in s): side dir  legs  total  gap  libvirt  resume->answer")
    for name, s in extra["directions"].items():
        print(f"  {name:10} {s['legs']:4}  {s['total']:5.2f}  {_ms(s['down']):>4}  {_ms(s['libvirt']):>7}  "
              f"{_ms(s['after']):>14}")
    print("legs (ms): gap = last answer->pause + pause->resume (events) + resume->first answer; libvirt's downtime")
    count: dict[str, int] = {}
    for x in extra["legs"]:
        count[x["side"]] = count.get(x["side"], 0) + 1
        steps = ", ".join(f"{k} at {v:.2f}" for k, v in x["phases"].items())
        print(f"  round {count[x['side']]} {x['side']} {x['direction']}: {x['total']:.2f} s, gap {_ms(x['down'])} = "
              f"{_ms(x['before'])} + {_ms(x['paused'])} + {_ms(x['after'])}; libvirt {_ms(x['libvirt'])}; "
              f"{x['answers']} answers" + (f"; {steps}" if steps else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.add_argument("--drain", action="store_true", help="the 5-VM drain instead (bench/migrate_drain.py; with "
                        "--via-api: `dvp node drain` on an installed 2-host platform, bench/migrate_drain_api.py)")
    parser.add_argument("--via-api", action="store_true",
                        help="also VMOP Migrate legs on a platform installed onto two lab hosts (bench/migrate_api.py)")
    parser.add_argument("--dvp", type=Path, help="with --via-api: the binary to install (default: built from this "
                        "checkout; another build's, to compare platforms)")
    parser.add_argument("--rounds", type=int, default=6,
                        help="rounds on the one guest, each a leg of both sides, directions alternating (medians)")
    args = parser.parse_args()
    if args.drain and args.via_api:
        from bench.migrate_drain_api import main as drain_api_main

        drain_api_main(json_out=args.output == "json")
        return
    if args.drain:
        from bench.migrate_drain import main as drain_main

        drain_main(json_out=args.output == "json")
        return
    rows, extra = run(args.rounds, via_api=args.via_api, dvp=args.dvp)
    print_table("bench/migrate: one VM between two lab hosts, no shared storage (QEMU TCG)",
                "dvp live migration", "virsh migrate --live --copy-storage-all", rows,
                json_out=args.output == "json")
    if args.output == "table":
        _print_details(extra)
    else:
        print(json.dumps(extra))


if __name__ == "__main__":
    main()
