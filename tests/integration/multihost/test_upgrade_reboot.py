"""`dvp upgrade --reboot` on the installed three-host cluster (`cluster3`): two VMs (the guest test
image, 128 MiB) run on the two workers; the upgrade to this build restamped as another version
drains each host before replacing its binary, "reboots" it with the lab's command and
uncordons it. Every guest keeps its boot (its uptime only grows), every VM moved, every Node
reports the new version, none stays cordoned, and every host's libvirtd was restarted.

Lab hosts share the test machine's kernel and have no systemd: their reboot is
`LAB_REBOOT` — the dvp service stopped, libvirtd and virtlogd restarted (as the install runs
them), the service started — which `dvp upgrade` recognises by the service's new process.

The cluster stays on the new version afterwards (the later multihost modules only need it
healthy and uncordoned; the new build is this source restamped, nothing else differs).
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from installer import hostlayout
from tests.services import polling
from tests.support.clusterlab import Cluster
from tests.support.clustervm import apply, guest, image_server
from tests.support.dist import built_dvp

pytestmark = pytest.mark.integration
eventually = functools.partial(polling.eventually, timeout=300, interval=1.0)
NS, IMAGE_PORT = "w15-upgrade", 18081
B_VERSION = "0.2.0"
LAB_REBOOT = f"""set -eu
for s in dvp-server dvp-agent; do if [ -x /etc/init.d/$s ]; then /etc/init.d/$s stop; fi; done
for d in libvirtd virtlogd; do
  p=$(cat /run/libvirt/$d.pid); kill "$p"
  for _ in $(seq 1 100); do [ -e /proc/"$p" ] || break; sleep 0.1; done
done
virtlogd -d -p /run/libvirt/virtlogd.pid
libvirtd -d --listen -f {hostlayout.CONFIG_DIR}/libvirtd.conf -p /run/libvirt/libvirtd.pid
until virsh -q -c qemu:///system uri >/dev/null 2>&1; do sleep 0.1; done
for s in dvp-server dvp-agent; do if [ -x /etc/init.d/$s ]; then /etc/init.d/$s start; fi; done
"""


def manifests(image_url: str, workers: list[str]) -> list[dict[str, Any]]:
    v = "virtualization.deckhouse.io/v1alpha2"
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": v, "kind": "ClusterVirtualImage", "metadata": {"name": f"{NS}-guest"},
         "spec": {"dataSource": {"type": "HTTP", "http": {"url": image_url}}}}]
    for i, node in enumerate(workers):
        docs += [
            {"apiVersion": v, "kind": "VirtualDisk", "metadata": {"name": f"vm{i}-root", "namespace": NS},
             "spec": {"dataSource": {"type": "ObjectRef", "objectRef": {"kind": "ClusterVirtualImage",
                                                                         "name": f"{NS}-guest"}}}},
            {"apiVersion": v, "kind": "VirtualMachine", "metadata": {"name": f"vm{i}", "namespace": NS},
             "spec": {"virtualMachineClassName": "generic", "runPolicy": "AlwaysOn", "cpu": {"cores": 1},
                      "memory": {"size": "128Mi"}, "terminationGracePeriodSeconds": 5,
                      "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                          {"weight": 100, "preference": {"matchFields": [
                              {"key": "metadata.name", "operator": "In", "values": [node]}]}}]}},
                      "blockDeviceRefs": [{"kind": "VirtualDisk", "name": f"vm{i}-root"}]}}]
    return docs


def vms(cluster: Cluster) -> dict[str, dict[str, Any]]:
    items = cluster.kubectl_json("get", "vm", "-n", NS)["items"]
    return {vm["metadata"]["name"]: vm.get("status") or {} for vm in items}


def uptime(cluster: Cluster, ip: str) -> float | None:
    body = guest(cluster, ip, "/cgi-bin/uptime")
    return float(body) if body else None


def libvirtd_pids(cluster: Cluster) -> dict[str, str]:
    return {n.name: n.sh("cat /run/libvirt/libvirtd.pid").stdout.strip() for n in cluster.nodes}


def test_upgrade_reboot_drains_each_host_and_guests_keep_running(cluster3: Cluster, tmp_path: Path) -> None:
    t_start = time.monotonic()
    dist_b = built_dvp(version=B_VERSION)
    master, workers = cluster3.master, cluster3.workers
    served = contextlib.ExitStack()
    url = served.enter_context(image_server(master, IMAGE_PORT))
    script = tmp_path / "lab-reboot.sh"
    script.write_text(LAB_REBOOT)
    try:
        for n in cluster3.nodes:  # the lab reboot starts libvirtd as the install did
            assert n.sh(f"test -f {hostlayout.CONFIG_DIR}/libvirtd.conf", check=False).returncode == 0, n.name
        apply(cluster3, manifests(url, [w.node for w in workers]))
        before = eventually(lambda: (s := vms(cluster3)) and len(s) == 2
                            and all(v.get("phase") == "Running" and v.get("ipAddress") for v in s.values()) and s,
                            timeout=600)
        ips = {name: str(st["ipAddress"]) for name, st in before.items()}
        ups0 = eventually(lambda: (u := {n: uptime(cluster3, ip) for n, ip in ips.items()}) and all(u.values()) and u,
                          timeout=300)
        t0 = time.monotonic()
        pids0 = libvirtd_pids(cluster3)
        print(f"\nVMs {[(n, s['nodeName']) for n, s in before.items()]} ready after {t0 - t_start:.1f} s")

        done = subprocess.run(
            [str(dist_b), "upgrade", "--config", str(cluster3.config), "--state-dir", str(cluster3.state),
             "--bundle", str(dist_b), "--reboot", "--reboot-command", f"sh {script}", "--node-timeout", "240",
             "-o", "json"], capture_output=True, text=True, timeout=1200, env=cluster3.lab.binary_env(), check=False)
        took = time.monotonic() - t0
        result = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
        assert done.returncode == 0 and result.get("result") == "succeeded", \
            f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
        steps = {h["name"]: [s["name"] for s in h["steps"]] for h in result["record"]["hosts"]}
        print(f"dvp upgrade --reboot: {took:.1f} s; " + "; ".join(
            f"{h['name']}: " + ", ".join(f"{s['name']} {s['seconds']}" for s in h["steps"])
            for h in result["record"]["hosts"]))
        reboot_steps = ["cordon", "drain", "replace", "reboot", "health", "uncordon"]
        assert all([s for s in names if s in reboot_steps] == reboot_steps for names in steps.values()), steps
        drains = {h["name"]: next(s["message"] for s in h["steps"] if s["name"] == "drain")
                  for h in result["record"]["hosts"]}
        for w in workers:  # each worker's VM went to a Node already on the new version
            assert "1 VM(s) to upgraded nodes" in drains[w.name], drains

        after = vms(cluster3)
        for name, ip in ips.items():
            assert after[name]["phase"] == "Running" and after[name]["ipAddress"] == ip, after[name]
            assert after[name]["nodeName"] != before[name]["nodeName"], (name, after[name]["nodeName"])
            up = float(eventually(functools.partial(uptime, cluster3, ip), timeout=60))
            # never rebooted: the guest's clock ran on through the whole upgrade
            assert up >= ups0[name] + (time.monotonic() - t0) - 5, (name, ups0[name], up, took)
        nodes = cluster3.kubectl_json("get", "nodes")["items"]
        versions = {n["metadata"]["name"]: n["metadata"]["annotations"].get(
            "virtualization.deckhouse.io/node-handler-version") for n in nodes}
        assert set(versions.values()) == {B_VERSION}, versions
        assert not [n["metadata"]["name"] for n in nodes if n.get("spec", {}).get("unschedulable")]
        pids1 = libvirtd_pids(cluster3)
        assert all(pids1[h] != pids0[h] for h in pids0), (pids0, pids1)  # every host got the lab reboot
    finally:
        served.close()
        for n in cluster3.nodes:  # whatever happened, later modules need schedulable nodes
            cluster3.kubectl("patch", "node", n.node, "-p", '{"spec":{"unschedulable":null}}', check=False)
        cluster3.kubectl("delete", "vm", "--all", "-n", NS, "--wait=false", check=False)
        eventually(lambda: not vms(cluster3), timeout=180)
        cluster3.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        cluster3.kubectl("delete", "cvi", f"{NS}-guest", "--wait=false", check=False)
        print(f"module took {time.monotonic() - t_start:.1f} s")
