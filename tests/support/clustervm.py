"""A guest VM on the installed lab cluster (`cluster3`) for the live-migration tests
(tests/integration/multihost/test_live_migration.py, test_migration_faults.py): the manifests of
one VM booted from a ClusterVirtualImage of the guest test image (served over HTTP from the
master), with a blank data disk its user data writes a token to; reading the guest over HTTP from
the master; `dvp` commands on a lab host; each host's libvirt domains and files of a VM.

The guest's user data writes its boot id to the data disk once, then every second drops the
page cache, serves what it reads back from the disk as /disk.txt, and dirties 1 MiB of memory;
/cgi-bin/uptime (the test image's) says whether it rebooted.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from installer import hostlayout
from nodeimage.guest import ensure_image
from tests.services import polling
from tests.support.clusterlab import Cluster
from tests.support.routelab import http
from tests.support.upgradelab import LabNode

REPO = Path(__file__).resolve().parents[2]
V = "virtualization.deckhouse.io/v1alpha2"
VIRSH = "virsh -c qemu:///system"

USER_DATA = """#!/bin/sh
d=/dev/vdb
while [ ! -b $d ]; do sleep 1; done
if ! dd if=$d bs=512 count=1 2>/dev/null | tr -d '\\000' | grep -q '^tok='; then
  echo "tok=$(cat /proc/sys/kernel/random/boot_id)" | dd of=$d bs=512 count=1 conv=sync,fsync 2>/dev/null
fi
while true; do
  sync; echo 3 > /proc/sys/vm/drop_caches
  dd if=$d bs=512 count=1 2>/dev/null | tr -d '\\000' | head -n 1 > /www/disk.tmp && mv /www/disk.tmp /www/disk.txt
  head -c 1048576 /dev/urandom > /run/dirty
  sleep 1
done
"""


@contextlib.contextmanager
def image_server(master: LabNode, port: int) -> Iterator[str]:
    """Serve the guest test image over HTTP from the master; yields its URL."""
    image = ensure_image("cloud").qcow2
    server = subprocess.Popen(master.host.nsenter("python3", "-m", "http.server", "--bind", master.host.address,
                                                  "--directory", str(image.parent), str(port)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://{master.host.address}:{port}/{image.name}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def guest_vm(ns: str, vm: str, image_url: str, *, prefer: str, memory: str = "256Mi") -> list[dict[str, Any]]:
    """Namespace, image, root and data disks and the VM (preferring node `prefer`)."""
    meta = {"namespace": ns}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": V, "kind": "ClusterVirtualImage", "metadata": {"name": f"{ns}-guest"},
         "spec": {"dataSource": {"type": "HTTP", "http": {"url": image_url}}}},
        {"apiVersion": V, "kind": "VirtualDisk", "metadata": {"name": f"{vm}-root", **meta},
         "spec": {"dataSource": {"type": "ObjectRef", "objectRef": {"kind": "ClusterVirtualImage",
                                                                     "name": f"{ns}-guest"}}}},
        {"apiVersion": V, "kind": "VirtualDisk", "metadata": {"name": f"{vm}-data", **meta},
         "spec": {"persistentVolumeClaim": {"size": "16Mi"}}},
        {"apiVersion": V, "kind": "VirtualMachine", "metadata": {"name": vm, **meta},
         "spec": {"virtualMachineClassName": "generic", "runPolicy": "AlwaysOn",
                  "cpu": {"cores": 1}, "memory": {"size": memory},
                  "terminationGracePeriodSeconds": 5,
                  "provisioning": {"type": "UserData", "userData": USER_DATA},
                  "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                      {"weight": 100, "preference": {"matchFields": [
                          {"key": "metadata.name", "operator": "In", "values": [prefer]}]}}]}},
                  "blockDeviceRefs": [{"kind": "VirtualDisk", "name": f"{vm}-root"},
                                      {"kind": "VirtualDisk", "name": f"{vm}-data"}]}},
    ]


def apply(cluster: Cluster, items: list[dict[str, Any]]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def get_vm(cluster: Cluster, ns: str, vm: str) -> dict[str, Any]:
    done = cluster.kubectl("get", "vm", vm, "-n", ns, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def vm_status(cluster: Cluster, ns: str, vm: str) -> dict[str, Any]:
    return dict(get_vm(cluster, ns, vm).get("status") or {})


def guest(cluster: Cluster, ip: str, path: str) -> str | None:
    """What the guest serves at `path`, fetched from the master (None: no answer)."""
    return http(cluster.master, f"http://{ip}{path}")


def guest_uptime(cluster: Cluster, ns: str, vm: str, ip: str, *, timeout: float = 60) -> float:
    """The guest's uptime (seconds) as it serves it, waited for up to `timeout` seconds; when it
    never answers, the assertion carries `unreachable_report`."""
    try:
        body = polling.eventually(lambda: guest(cluster, ip, "/cgi-bin/uptime"), timeout=timeout, interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"the guest at {ip} did not answer within {timeout:.0f} s\n"
                             + unreachable_report(cluster, ns, vm, ip)) from exc
    return float(body)


def dvp_on(node: LabNode, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`dvp ARGS` run on a lab host as the cluster admin."""
    cmd = " ".join([hostlayout.BINARY, *args, "--kubeconfig", hostlayout.ADMIN_KUBECONFIG])
    return node.sh(f"timeout {int(timeout)} {cmd}", check=False)


def start_probe(node: LabNode, ip: str) -> subprocess.Popen[bytes]:
    """tests.support.guestprobe run on `node` against the guest every 100 ms."""
    return subprocess.Popen(node.host.nsenter("env", f"PYTHONPATH={REPO}", str(REPO / ".venv/bin/python"), "-m",
                                              "tests.support.guestprobe", "--every", "0.1", "--timeout", "1", ip),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def stop_probe(proc: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    out, _ = proc.communicate(timeout=30)  # closing its stdin ends the probe
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def domain_states(node: LabNode, domain: str) -> list[str]:
    """The state of each libvirt domain named `domain` on the host ([] when it has none)."""
    done = node.sh(f"{VIRSH} domstate {domain}", check=False)
    return [done.stdout.strip()] if done.returncode == 0 else []


def leftovers(node: LabNode, uids: list[str]) -> list[str]:
    """Files of the host's state directory whose path names one of `uids` (a VM's instance
    directory, its volumes' files): what a VM that left the host must not leave behind."""
    found = node.sh(f"find {hostlayout.STATE_DIR} -path {hostlayout.SERVER_DATA_DIR} -prune -o -print", check=False)
    return [p for p in found.stdout.splitlines() if any(u in p for u in uids)]


def unreachable_report(cluster: Cluster, ns: str, vm: str, ip: str) -> str:
    """Why the guest at `ip` may not answer, as each host sees it: the VM's status, each host's
    VM routes and neighbour entry for it, a ping, the service log's last lines about routes and,
    where its domain runs, the domain's state and its serial console's last lines. Printed when a
    test's wait for the guest runs out, so a failure seen once in CI can be read afterwards."""
    status = vm_status(cluster, ns, vm)
    st = {k: status.get(k) for k in ("phase", "nodeName", "ipAddress")}
    lines = [f"VM {ns}/{vm} status: {st}"]
    domain = f"dvp-{ns}_{vm}"
    for n in cluster.nodes:
        done = n.sh(f"ip -4 route show table all | grep -w {ip}; ip neigh show | grep -w {ip}; "
                    f"busybox ping -c 2 -W 1 {ip} | tail -n 2; {VIRSH} domstate {domain} 2>/dev/null || exit 0; "
                    f"tail -n 8 {hostlayout.STATE_DIR}/instances/$({VIRSH} domuuid {domain})/serial.log",
                    check=False)
        routes = [line for line in cluster.log(n).splitlines() if ip in line or "VM routes" in line][-5:]
        lines.append(f"--- {n.name} ({n.node}):\n{done.stdout.strip()}\n{done.stderr.strip()}\n"
                     + "\n".join(routes))
    return "\n".join(lines)
