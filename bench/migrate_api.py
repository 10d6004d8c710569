"""bench/migrate --via-api: the move driven the way users drive it, a VirtualMachineOperation Migrate
through the API on a platform installed onto two lab hosts, so the whole platform path is
measured: VMOP controller -> VM controller -> the source's node handler (LiveMigration) -> the
switch-over's `status.nodeName` write -> every host's routes. The lab legs (bench/migrate.py)
call `LiveMigration` directly and have no routes to move.

The cluster is built as bench/e2e_cluster.py builds it (tests/support/clusterlab.py: `dist/dvp
install --config` onto a master and one worker, lab hosts on one LAN, software emulation). The VM
has the lab legs' sizes: the guest image (a ClusterVirtualImage served over HTTP from the master),
1 GiB RAM, a 2 GiB data disk of which its user data writes 500 MiB before it says it is ready, the
guest's page cache dropped after and its free memory then overwritten with zeros (a tmpfs file
filled and removed): a dropped cache page is free but keeps its data, so without that the move
would send those 500 MiB of RAM too (605 MiB in all, measured, against the lab guest's 110 MiB,
whose data volume is written on the host before it boots), and the rows would compare unlike guests.
Each round is one VMOP Migrate, to the other host (so directions alternate), after an untimed
round trip (a freshly booted guest's first move is slower, for virsh too):
- total: VMOP created -> its phase Completed, as a watch of the VMOP delivers it;
- downtime: the longest gap between ICMP answers, probed every 20 ms from both hosts as in the lab
  legs (the host that does not run the VM reaches it through its /32 route to the one that does);
- libvirt's own downtime figure (`virsh domjobinfo --completed` on the target);
- the pause and resume times from `virsh event` on each host, so the gap splits as the lab legs';
- when each step was first seen in the API (watched, not polled): the VMOP's phases, the internal
  instance's `status.migration.phase`, its `status.nodeName` moved to the target (the switch-over's
  early write, which routes follow) and its `spec.nodeName` handed over (the end).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.migrate import _answers, _ping
from bench.migrate_api_peer import DomainEvents, libvirt_downtime, run_peer_legs
from bench.migrate_stats import Leg, longest_gap, split
from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINE_OPERATIONS
from controlplane.common.kube.client import KubeClient, Resource
from tests.support.clusterlab import Cluster, start_cluster
from tests.support.clustervm import apply, guest, guest_vm, image_server, vm_status
from tests.support.dist import built_dvp
from tests.support.upgradelab import LabNode

NS, VM, PORT = "bench-migrate", "mover", 18082
FILL = """#!/bin/sh
d=/dev/vdb
while [ ! -b $d ]; do sleep 1; done
head -c 1048576 /dev/urandom > /run/block
i=0; while [ $i -lt 500 ]; do cat /run/block; i=$((i+1)); done > $d
sync; echo 3 > /proc/sys/vm/drop_caches
m=$(awk '/MemFree/ {print int($2 / 1024) - 96}' /proc/meminfo)
mkdir -p /run/zero && mount -t tmpfs -o size=${m}m zero /run/zero
dd if=/dev/zero of=/run/zero/fill bs=1M count=$m 2>/dev/null; rm -f /run/zero/fill; umount /run/zero
echo filled > /www/filled.txt
"""


class _Steps:
    """When each step of one move was first seen, from two watches (the VMOP, the VM's internal
    instance) rather than polling, so the measuring adds no requests to the server it measures."""

    def __init__(self, kube: KubeClient, vmop: str, target: str) -> None:
        self.seen: dict[str, float] = {}
        self.phase = ""
        self.done = threading.Event()
        self.target = target
        self._lock = threading.Lock()
        for res, name, names in ((VIRTUAL_MACHINE_OPERATIONS, vmop, self._vmop), (INSTANCES, VM, self._instance)):
            version = kube.list(res, NS)["metadata"]["resourceVersion"]
            threading.Thread(target=self._watch, args=(kube, res, name, version, names), daemon=True).start()

    def _watch(self, kube: KubeClient, res: Resource, name: str, version: str,
               names: Callable[[dict[str, Any]], list[str]]) -> None:
        for event in kube.watch(res, NS, resource_version=version, field_selector=f"metadata.name={name}",
                                timeout_seconds=600, bookmarks=False):
            now = time.time()
            with self._lock:
                for step in filter(None, names(event["object"])):
                    self.seen.setdefault(step, now)
            if self.done.is_set():
                return

    def _vmop(self, obj: dict[str, Any]) -> list[str]:
        self.phase = (obj.get("status") or {}).get("phase", "")
        if self.phase in ("Completed", "Failed"):
            self.done.set()
        return [f"VMOP {self.phase}"] if self.phase else []

    def _instance(self, obj: dict[str, Any]) -> list[str]:
        status = obj.get("status") or {}
        step = (status.get("migration") or {}).get("phase")
        return [f"instance {step}" if step else "",
                "instance status.nodeName moved" if status.get("nodeName") == self.target else "",
                "instance spec.nodeName moved" if (obj.get("spec") or {}).get("nodeName") == self.target else ""]

    def wait(self, timeout: float) -> str:
        """The VMOP's final phase ("" if it did not end within `timeout`)."""
        self.done.wait(timeout)
        time.sleep(0.2)  # the instance's last writes follow the VMOP's within this
        return self.phase


def _domain(node: LabNode) -> str:
    names = node.sh("virsh -c qemu:///system -q list --name", check=False).stdout.split()
    return next((n for n in names if f"{NS}_{VM}" in n), "")


def _round(cluster: Cluster, kube: KubeClient, i: int | str, ip: str) -> Leg:
    source = str(vm_status(cluster, NS, VM)["nodeName"])
    src = next(n for n in cluster.nodes if n.node == source)
    dst = next(n for n in cluster.nodes if n.node != source)
    probes = [_ping(src, ip), _ping(dst, ip)]
    events = [DomainEvents(src, f"{NS}_{VM}"), DomainEvents(dst, f"{NS}_{VM}")]
    time.sleep(1)
    steps = _Steps(kube, f"{VM}-{i}", dst.node)
    t0 = time.time()
    kube.create(VIRTUAL_MACHINE_OPERATIONS, {
        "apiVersion": VIRTUAL_MACHINE_OPERATIONS.api_version, "kind": "VirtualMachineOperation",
        "metadata": {"name": f"{VM}-{i}", "namespace": NS}, "spec": {"type": "Migrate", "virtualMachineName": VM}}, NS)
    phase = steps.wait(600)
    seen = {name: when - t0 for name, when in steps.seen.items()}
    t1 = steps.seen.get(f"VMOP {phase}", time.time())
    time.sleep(2)
    source_answers, target_answers = _answers(probes[0]), _answers(probes[1])
    paused, resumed = events[0].stop().get("suspended"), events[1].stop().get("resumed")
    if phase != "Completed":
        raise RuntimeError(f"VMOP {VM}-{i} ended {phase or 'not in 600 s'}")
    every = sorted(source_answers + target_answers)  # both hosts reach it before and after (routes)
    before, pause, after = split(every, every, paused, resumed)
    if resumed is not None:
        seen["target resumed the guest"] = resumed - t0
    return Leg(side="api", direction="1->2" if src is cluster.master else "2->1", total=t1 - t0,
               down=longest_gap(every, t0, t1), libvirt=libvirt_downtime(dst, _domain(dst)), answers=len(every),
               before=before, paused=pause, after=after, phases=dict(sorted(seen.items(), key=lambda kv: kv[1])))


def run_via_api(rounds: int, work: Path, *, dvp: Path | None = None) -> list[Leg]:
    """`rounds` VMOP Migrate legs on a 2-host installed cluster ("1->2": from the master), installed
    with `dvp` (default: the binary built from this checkout), then as many (rounded up to even)
    `virsh migrate` legs of the same domain between the same hosts (bench/migrate_api_peer.py)."""
    cluster = start_cluster(dvp or built_dvp(), work, workers=1)
    try:
        kube = KubeClient.from_kubeconfig(cluster.kubeconfig)
        with image_server(cluster.master, PORT) as url:
            items = guest_vm(NS, VM, url, prefer=cluster.master.node, memory="1Gi")
            items[3]["spec"]["persistentVolumeClaim"]["size"] = "2Gi"
            items[4]["spec"]["provisioning"]["userData"] = FILL
            apply(cluster, items)
            ip = _wait(lambda: (s := vm_status(cluster, NS, VM)).get("phase") == "Running" and s.get("ipAddress"), 900)
            _wait(lambda: guest(cluster, str(ip), "/filled.txt") == "filled\n", 600)
        time.sleep(2)
        for warm in ("warm-there", "warm-back"):  # untimed, as the lab legs' first round trip
            _round(cluster, kube, warm, str(ip))
        legs = [_round(cluster, kube, i, str(ip)) for i in range(rounds)]
        return legs + run_peer_legs(cluster, f"{NS}_{VM}", rounds, ping=str(ip))
    finally:
        cluster.close()


def _wait(check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f} s: {check}")
        time.sleep(1)
    return value

