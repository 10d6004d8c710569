"""bench/migrate --via-api's own peer: plain `virsh migrate` of the very domain the API legs moved,
between the same two installed hosts, in the same run.

The lab peer (bench/migrate.py) moves another guest between other hosts: a VM booted by the
platform has more of its memory in use (the guest's page cache, cloud-init's work; measured 186
MiB sent against the lab guest's 110 MiB), so a ratio against that peer mixes the platform's cost
with a heavier guest. This peer takes the platform's domain as it is after the API legs, with the
flags ours uses (`--live --p2p --copy-storage-all --persistent --undefinesource --abort-on-error`,
`--tls` where the install set up QEMU's migration TLS, the same disks, the node's libvirt client
certificates): only the platform's own path differs.

The platform's services are stopped first on both hosts (nothing of ours may react to a domain
moved behind its back; they are not started again, the cluster is closed next). As in the lab
peer, the files virsh needs on the target are made before each leg, untimed: the copied disks as
new empty qcow2 files of the source's virtual sizes, the read-only files (the seed) copied, their
directories made. An even number of legs, so the domain ends on the node the platform put it.

Only the total time and libvirt's downtime figure are compared: with the platform stopped nothing
moves the VM's routes between the hosts, so pings cannot follow the guest (the lab peer's probes
measure the downtime). The guest is still pinged as in ours' legs (from the same hosts, every
20 ms): answering them is work for the guest and for the hosts while its memory is copied, and
a peer moving an unprobed guest copied it faster (3.0-3.75 s against 4.05-5.64 s for the API legs
in one run, with the platform's own steps taking 0.1 s before libvirt and 0.3 s after it).
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.migrate_stats import Leg, migration_events
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.migration import target_uri
from controlplane.nodehandler.migration_plan import plan_migration
from installer import hostlayout
from tests.support.clusterlab import Cluster
from tests.support.upgradelab import LabNode

VIRSH = "virsh -c qemu:///system"


def running_on(cluster: Cluster, match: str) -> tuple[LabNode, str]:
    for node in cluster.nodes:
        names = node.sh(f"{VIRSH} -q list --name", check=False).stdout.split()
        found = [n for n in names if match in n]
        if found:
            return node, found[0]
    raise RuntimeError(f"no host runs a domain named like {match!r}")


def _target_files(src: LabNode, dst: LabNode, xml: str) -> list[str]:
    """Make what virsh needs on `dst` (untimed); the copied disks' target names."""
    plan = plan_migration(xml)
    copied = {d.path for d in plan.copied}
    dst.sh("mkdir -p " + " ".join(shlex.quote(d) for d in plan.directories))
    for d in plan.copied:
        info = json.loads(src.sh(f"qemu-img info -U --output=json {shlex.quote(d.path)}").stdout)
        dst.sh(f"rm -f {shlex.quote(d.path)} && qemu-img create -q -f qcow2 {shlex.quote(d.path)} "
               f"{int(info['virtual-size'])}")
    for src_el in ET.fromstring(xml).iter("source"):
        path = src_el.get("file")
        if path and path not in copied:
            dst.write(path, src.path(path).read_bytes())
    return [d.dev for d in plan.copied]


class DomainEvents:
    """`virsh event` on one host: when a domain whose name holds `name` was suspended and resumed
    by a migration (the line's own timestamp, libvirtd's clock: the machine's)."""

    def __init__(self, node: LabNode, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(node.host.nsenter(
            "sh", "-c", "stdbuf -oL virsh -c qemu:///system event --event lifecycle --loop --timestamp & "
                        "p=$!; read _; kill $p"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self) -> dict[str, float]:
        out, _ = self.proc.communicate(timeout=10)
        return migration_events(out.splitlines(), self.name)


def libvirt_downtime(node: LabNode, domain: str) -> float | None:
    """The completed migration's downtime on `node` (its target), kept for later reads."""
    out = node.sh(f"{VIRSH} domjobinfo --completed --keep-completed {domain}", check=False).stdout
    for line in out.splitlines():
        if line.startswith("Total downtime:"):
            return float(line.split(":", 1)[1].split()[0]) / 1000
    return None


def virsh_move(cluster: Cluster, match: str, *, ping: str = "", ping_from: tuple[str, ...] = ("source", "target")
               ) -> Leg:
    """Move the domain named like `match` to the other host with virsh (the platform stopped),
    its address `ping` (if given) pinged meanwhile from the hosts `ping_from` names ("source",
    "target", "master") as ours' legs ping it."""
    from bench.migrate import _answers, _ping  # bench.migrate loads this module's users lazily

    src, domain = running_on(cluster, match)
    dst = next(n for n in cluster.nodes if n is not src)
    hosts = {"source": src, "target": dst, "master": cluster.master}
    probes = [_ping(hosts[h], ping) for h in ping_from] if ping else []
    xml = src.sh(f"{VIRSH} dumpxml {domain}").stdout
    disks = ",".join(_target_files(src, dst, xml))
    layout = Layout(Path(hostlayout.STATE_DIR), Path(hostlayout.RUN_DIR))  # the installed hosts' layout
    tls = " --tls" if src.sh(f"test -f {layout.qemu_migration_pki}/ca-cert.pem", check=False).returncode == 0 else ""
    uri = target_uri(dst.host.address, pki_dir=layout.libvirt_pki)
    resumed = DomainEvents(dst, domain)
    time.sleep(1)  # the event stream is up
    t0 = time.time()
    done = src.sh(f"{VIRSH} migrate --live --p2p --copy-storage-all --persistent --undefinesource --abort-on-error"
                  f"{tls} --migrate-disks {disks} {domain} {shlex.quote(uri)} tcp://{dst.host.address} "
                  f"--listen-address {dst.host.address}", check=False)
    total = time.time() - t0
    resumed_at = resumed.stop().get("resumed")
    answers = sum(len(_answers(p)) for p in probes)
    if done.returncode != 0:
        raise RuntimeError(f"virsh migrate on the installed hosts failed: {done.stderr.strip()}")
    return Leg(side="api-peer", direction="1->2" if src is cluster.master else "2->1", total=total, down=math.nan,
               libvirt=libvirt_downtime(dst, domain), answers=answers,
               phases={} if resumed_at is None else {"target resumed the guest": resumed_at - t0, "returned": total})


def run_peer_legs(cluster: Cluster, match: str, legs: int, *, ping: str = "") -> list[Leg]:
    """`legs` (rounded up to even) virsh migrations of the domain named like `match`, directions
    alternating, with the platform's services stopped on every host."""
    stop_platform(cluster)
    return [virsh_move(cluster, match, ping=ping) for _ in range(legs + legs % 2)]


def stop_platform(cluster: Cluster) -> None:
    """Every host's dvp service stopped (domains keep running): nothing of ours reacts to virsh."""
    for node in cluster.nodes:
        cluster.service(node, "stop")
    time.sleep(1)
