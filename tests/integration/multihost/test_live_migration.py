"""Live migration on an INSTALLED platform (`cluster3`: `dist/dvp install --config` onto a master
and two workers; the install makes each libvirtd listen on qemu+tls at the host's internal
address, certificates of the platform CA on both ends, docs/live-migration.md), driven the way users drive it: `dvp v migrate` and
`dvp node drain -o json` on the master, then a VMOP Migrate applied with kubectl 1.33.

One VM (the guest test image, from a ClusterVirtualImage the master imports over HTTP) with a
blank data disk (tests/support/clustervm.py): its user data writes a token (its boot id) to the data disk at boot, then every
second drops the page cache and serves what it reads back from the disk as /disk.txt, and dirties
1 MiB of memory. The master probes /cgi-bin/uptime every 100 ms throughout the move.

Then three more such VMs are placed on the VM's new node (the other Nodes cordoned meanwhile),
and `dvp node drain` of that node moves all four live: each ends Running elsewhere on its
address, its guest never rebooted, and no domain of them is left on the drained host.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import pytest

from installer import hostlayout
from tests.services import polling
from tests.support import clustervm
from tests.support.clusterlab import Cluster
from tests.support.clustervm import apply, dvp_on, guest, guest_vm, image_server, start_probe, stop_probe
from tests.support.guestprobe import unreachable_intervals
from tests.support.routelab import vm_routes, wait_routed

pytestmark = pytest.mark.integration
eventually = functools.partial(polling.eventually, timeout=300, interval=1.0)
NS = "w15-migrate"
VM, IMAGE_PORT = "mover", 18080
MAX_GAP = 3.0
"""Longest time the guest may not answer the master's 100 ms probes (1 s probe timeout) across a
move. Measured here: 1.0 s (one probe lost; libvirt's switch-over is 0.3-0.9 s under TCG in
bench/migrate). The master's route to the VM follows status.nodeName, written when the target's
libvirtd reports the guest resumed there (docs/network.md); until then the old gateway forwards
nothing. 3 s is that 1 s with
room for the shared, loaded 2-core CI machine, and still far below a reboot (the guest's uptime
check catches that anyway) or a stop-and-start (tens of seconds)."""


def test_vm_migrates_live_then_drain_moves_it(cluster3: Cluster) -> None:
    t_start = time.monotonic()
    with image_server(cluster3.master, IMAGE_PORT) as url:
        _migrate_then_drain(cluster3, url, t_start)


def _three_more_on(cluster: Cluster, node: str, url: str) -> dict[str, tuple[str, float]]:
    """Three more VMs of the guest image Running on `node` (the other Nodes cordoned while they
    are placed); name -> (IP, the guest's uptime once up)."""
    names = [f"{VM}-{i}" for i in range(1, 4)]
    others = [n["metadata"]["name"] for n in cluster.kubectl_json("get", "nodes")["items"]
              if n["metadata"]["name"] != node]
    try:
        for other in others:
            cluster.kubectl("cordon", other)
        docs = [d for n in names for d in guest_vm(NS, n, url, prefer=node, memory="128Mi")
                if d["kind"] in ("VirtualDisk", "VirtualMachine")]
        for d in docs:  # a lab node has 2 cores: the first VM takes one, these share the other
            if d["kind"] == "VirtualMachine":
                d["spec"]["cpu"]["coreFraction"] = "20%"
        apply(cluster, docs)
        sts = {n: eventually(functools.partial(_running, cluster, n), timeout=600) for n in names}
    finally:
        for other in others:
            cluster.kubectl("uncordon", other, check=False)
    assert all(st["nodeName"] == node for st in sts.values()), sts
    return {n: (str(st["ipAddress"]), float(eventually(functools.partial(guest, cluster, str(st["ipAddress"]),
                                                                          "/cgi-bin/uptime"), timeout=300)))
            for n, st in sts.items()}


def _running(cluster: Cluster, name: str) -> dict[str, Any] | None:
    st = clustervm.vm_status(cluster, NS, name)
    return st if st.get("phase") == "Running" and st.get("ipAddress") else None


def get_vm(cluster: Cluster) -> dict[str, Any]:
    return clustervm.get_vm(cluster, NS, VM)


def status(cluster: Cluster) -> dict[str, Any]:
    return clustervm.vm_status(cluster, NS, VM)


def _migrate_then_drain(cluster3: Cluster, url: str, t_start: float) -> None:
    master, a = cluster3.master, cluster3.workers[0]
    try:
        # the install made every libvirtd listen on TLS at its internal address only, not on TCP,
        # with its own certificates (keys 0600)
        for n in cluster3.nodes:
            listeners = n.sh("ss -Hltn '( sport = :16514 or sport = :16509 )'").stdout
            assert f"{n.host.address}:16514" in listeners and "0.0.0.0:16514" not in listeners, (n.name, listeners)
            assert ":16509" not in listeners, (n.name, listeners)
            keys = n.sh(f"stat -c '%a %n' {hostlayout.STATE_DIR}/pki/libvirt/*key.pem").stdout.split("\n")
            assert [k.split()[0] for k in keys if k] == ["600", "600"], (n.name, keys)
        apply(cluster3, guest_vm(NS, VM, url, prefer=a.node))
        st = eventually(lambda: (s := status(cluster3)).get("phase") == "Running" and s.get("ipAddress") and s,
                        timeout=600)
        ip, source = str(st["ipAddress"]), str(st["nodeName"])
        token = eventually(lambda: (t := guest(cluster3, ip, "/disk.txt")) and t.startswith("tok=") and t,
                           timeout=300)
        up0 = float(str(guest(cluster3, ip, "/cgi-bin/uptime")))
        # worker to worker: the master's route to the VM must move from one gateway to the other
        target = next(n for n in cluster3.workers if n.node != source)
        print(f"\nVM {VM} {ip} on {source}; ready after {time.monotonic() - t_start:.1f} s; token {token}")

        probe = start_probe(master, ip)
        time.sleep(2)
        t0 = time.monotonic()
        done = dvp_on(master, "v", "migrate", VM, "-n", NS, "--target-node", target.node, "-o", "json")
        took = time.monotonic() - t0
        time.sleep(3)
        lines = stop_probe(probe)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        assert json.loads(done.stdout)["status"]["phase"] == "Completed", done.stdout
        gap = unreachable_intervals(lines).get(ip, 0.0)
        ups = [ln["uptime"] for ln in lines if ln["ok"]]
        print(f"dvp v migrate {source} -> {target.node}: {took:.1f} s; {len(lines)} probes, "
              f"{len(lines) - len(ups)} failed, longest gap {gap:.2f} s")
        assert len(ups) > 20 and all(y >= x - 0.05 for x, y in zip(ups, ups[1:], strict=False)), ups  # never rebooted
        assert ups[0] >= up0 and ups[-1] > ups[0] + took, (up0, ups[0], ups[-1])
        assert gap <= MAX_GAP, f"guest unreachable for {gap:.2f} s (bound {MAX_GAP} s)"

        st = status(cluster3)
        assert st["nodeName"] == target.node and st["ipAddress"] == ip, st
        assert (st.get("migrationState") or {}).get("result") == "Succeeded", st.get("migrationState")
        wait_routed(master, ip, target.host.address, timeout=60)
        assert ip not in vm_routes(target)  # its own VM: the bridge delivers it
        assert guest(cluster3, ip, "/disk.txt") == token  # read back from the disk on the target
        assert target.sh("virsh -c qemu:///system -q list --name").stdout.count(f"{NS}_{VM}") == 1
        src = next(n for n in cluster3.nodes if n.node == source)
        assert f"{NS}_{VM}" not in src.sh("virsh -c qemu:///system -q list --all --name").stdout  # moved, not copied

        extras = _three_more_on(cluster3, target.node, url)  # the drained host runs 4 VMs
        t1 = time.monotonic()
        drained = dvp_on(master, "node", "drain", target.node, "-o", "json", "--timeout", "300")
        try:
            result = json.loads(drained.stdout)
            print(f"dvp node drain {target.node} (4 VMs): {time.monotonic() - t1:.1f} s: "
                  f"{[(v['name'], v['phase'], v.get('target')) for v in result['vms']]}")
            assert drained.returncode == 0 and result["ok"], f"{drained.stdout}\n{drained.stderr}"
            moved = {v["name"]: v for v in result["vms"] if v["namespace"] == NS}
            assert sorted(moved) == sorted([VM, *extras]), moved
            for name, v in moved.items():  # each moved live, now Running elsewhere on its address
                assert v["phase"] == "Completed" and v["action"] == "Evict", v
                now = clustervm.vm_status(cluster3, NS, name)
                assert now["phase"] == "Running" and now["nodeName"] not in (target.node, ""), (name, now)
                assert v["target"] == now["nodeName"] and now["ipAddress"] == (extras[name][0] if name in extras
                                                                                  else ip), (name, v, now)
            after = status(cluster3)
            for name, (eip, eup) in extras.items():  # the guests never rebooted
                up = float(eventually(functools.partial(guest, cluster3, eip, "/cgi-bin/uptime"), timeout=60))
                assert up > eup, (name, eup, up)
            on_target = target.sh("virsh -c qemu:///system -q list --name").stdout
            assert f"{NS}_" not in on_target, on_target
        finally:
            dvp_on(master, "node", "uncordon", target.node)
        up2 = float(eventually(lambda: guest(cluster3, ip, "/cgi-bin/uptime"), timeout=60))
        assert up2 > ups[-1], (ups[-1], up2)  # still the same boot
        assert guest(cluster3, ip, "/disk.txt") == token

        # the API as DVP has it: a VMOP Migrate applied with kubectl 1.33
        here = after["nodeName"]
        cluster3.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineOperation",
            "metadata": {"name": f"{VM}-back", "namespace": NS},
            "spec": {"type": "Migrate", "virtualMachineName": VM}}))
        op = eventually(lambda: (o := cluster3.kubectl_json("get", "vmop", f"{VM}-back", "-n", NS))
                        .get("status", {}).get("phase") in ("Completed", "Failed") and o, timeout=300)
        assert op["status"]["phase"] == "Completed", op["status"]
        moved = status(cluster3)
        assert moved["nodeName"] != here and moved["ipAddress"] == ip, moved
        up3 = float(eventually(lambda: guest(cluster3, ip, "/cgi-bin/uptime"), timeout=60))
        assert up3 > up2 and guest(cluster3, ip, "/disk.txt") == token, (up2, up3)
        print(f"VMOP Migrate {here} -> {moved['nodeName']}: Completed")
    finally:
        cluster3.kubectl("delete", "vm", "--all", "-n", NS, "--wait=false", check=False)
        eventually(lambda: not cluster3.kubectl_json("get", "vm", "-n", NS)["items"], timeout=180)
        cluster3.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        cluster3.kubectl("delete", "cvi", f"{NS}-guest", "--wait=false", check=False)
        print(f"module took {time.monotonic() - t_start:.1f} s")
