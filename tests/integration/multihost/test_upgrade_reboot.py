"""`dvp upgrade --reboot` on the installed three-host cluster (`cluster3`): two VMs (the guest test
image, 128 MiB) run on the two workers; the upgrade to this build restamped as another version
drains each host before replacing its binary, "reboots" it with the lab's command and
uncordons it. Every guest keeps its boot (its uptime only grows), every VM moved, every Node
reports the new version, none stays cordoned, and every host's libvirtd was restarted.

Lab hosts share the test machine's kernel and have no systemd: their reboot is
`LAB_REBOOT` — the dvp service stopped, libvirtd and virtlogd restarted (as the install runs
them), the service started — which `dvp upgrade` recognises by the service's new process.

Then a second `--reboot` upgrade (to a third stamp) whose lab reboot is refused on the last
worker, after the other two hosts are done and that worker is drained: every host is rolled back
(binary, service, health, uncordon), every Node reports the version before, and the guests, moved
by the drains, never rebooted.

Last, a `--reboot` upgrade whose new server migrates the datastore (this source restamped with
the `upgrade-test` feature: data version 2) runs in two passes. Its lab reboot is refused on the
last worker, which the second pass has drained by then: nothing is rolled back, as a restored
datastore would place the moved VMs where they no longer run. Every Node reports the new version,
each VM's status names the one node whose libvirt runs its domain, the guests never rebooted, the
refused worker is schedulable again, and the record is `reboots-pending`. The same bundle then
finishes the reboots.

The cluster stays on that last version afterwards (the later multihost modules only need it
healthy and uncordoned; the new builds are this source restamped, nothing else differs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import subprocess
import time
from collections.abc import Iterator
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
B_VERSION, C_VERSION, D_VERSION = "0.2.0", "0.3.0", "0.3.1"  # C is rolled back: D is from B
D_ENV = {"DVP_BUILD_FEATURES": "upgrade-test"}  # a storage migration to data version 2
REFUSE_MARK = f"{hostlayout.CONFIG_DIR}/lab-reboot-refuse"
LAB_REBOOT = f"""set -eu
if [ -e {REFUSE_MARK} ]; then echo "lab reboot refused on this host" >&2; exit 1; fi
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


@dataclasses.dataclass
class Guests:
    """The module's two VMs: where they ran first, their addresses, the lab reboot script."""
    before: dict[str, dict[str, Any]]
    ips: dict[str, str]
    script: Path


def uptimes(cluster: Cluster, ips: dict[str, str]) -> dict[str, float]:
    return dict(eventually(lambda: (u := {n: uptime(cluster, ip) for n, ip in ips.items()}) and all(u.values()) and u,
                           timeout=300))


def upgrade(cluster: Cluster, dist: Path, script: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [str(dist), "upgrade", "--config", str(cluster.config), "--state-dir", str(cluster.state),
         "--bundle", str(dist), "--reboot", "--reboot-command", f"sh {script}", "--node-timeout", "240",
         "-o", "json"], capture_output=True, text=True, timeout=1200, env=cluster.lab.binary_env(), check=False)
    return done, (json.loads(done.stdout) if done.stdout.strip().startswith("{") else {})


def refused_upgrade(cluster: Cluster, guests: Guests, dist: Path, what: str
                    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], dict[str, float], float]:
    """`dvp upgrade --reboot` to `dist` with the lab reboot refused on the last worker: the run,
    its JSON result, the guests' uptimes before and when it began (monotonic)."""
    refused = cluster.workers[-1]
    ups0 = uptimes(cluster, guests.ips)
    t0 = time.monotonic()
    refused.sh(f"touch {REFUSE_MARK}")
    try:
        done, result = upgrade(cluster, dist, guests.script)
    finally:
        refused.sh(f"rm -f {REFUSE_MARK}")
    print(f"\ndvp upgrade --reboot{what}, refused on {refused.name}: {time.monotonic() - t0:.1f} s; " + "; ".join(
        f"{h['name']}: " + ", ".join(f"{s['name']} {s['status']}" for s in h["steps"])
        for h in result.get("record", {}).get("hosts", [])))
    return done, result, ups0, t0


def node_versions(cluster: Cluster) -> dict[str, str | None]:
    return {n["metadata"]["name"]: n["metadata"]["annotations"].get("virtualization.deckhouse.io/node-handler-version")
            for n in cluster.kubectl_json("get", "nodes")["items"]}


def assert_guests_kept(cluster: Cluster, guests: Guests, ups0: dict[str, float], t0: float) -> dict[str, Any]:
    """Every VM Running on its address, and its guest never rebooted since `t0` (its clock ran on)."""
    after = vms(cluster)
    for name, ip in guests.ips.items():
        assert after[name]["phase"] == "Running" and after[name]["ipAddress"] == ip, after[name]
        up = float(eventually(functools.partial(uptime, cluster, ip), timeout=60))
        assert up >= ups0[name] + (time.monotonic() - t0) - 5, (name, ups0[name], up)
    return after


@pytest.fixture(scope="module")
def guests(cluster3: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guests]:
    t_start = time.monotonic()
    served = contextlib.ExitStack()
    url = served.enter_context(image_server(cluster3.master, IMAGE_PORT))
    script = tmp_path_factory.mktemp("upgrade-reboot") / "lab-reboot.sh"
    script.write_text(LAB_REBOOT)
    try:
        for n in cluster3.nodes:  # the lab reboot starts libvirtd as the install did
            assert n.sh(f"test -f {hostlayout.CONFIG_DIR}/libvirtd.conf", check=False).returncode == 0, n.name
        apply(cluster3, manifests(url, [w.node for w in cluster3.workers]))
        before = eventually(lambda: (s := vms(cluster3)) and len(s) == 2
                            and all(v.get("phase") == "Running" and v.get("ipAddress") for v in s.values()) and s,
                            timeout=600)
        print(f"\nVMs {[(n, s['nodeName']) for n, s in before.items()]} ready after {time.monotonic() - t_start:.1f} s")
        yield Guests(before, {name: str(st["ipAddress"]) for name, st in before.items()}, script)
    finally:
        served.close()
        for n in cluster3.nodes:  # whatever happened, later modules need schedulable nodes
            cluster3.kubectl("patch", "node", n.node, "-p", '{"spec":{"unschedulable":null}}', check=False)
            n.sh(f"rm -f {REFUSE_MARK}", check=False)
        cluster3.kubectl("delete", "vm", "--all", "-n", NS, "--wait=false", check=False)
        eventually(lambda: not vms(cluster3), timeout=180)
        cluster3.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        cluster3.kubectl("delete", "cvi", f"{NS}-guest", "--wait=false", check=False)
        print(f"module took {time.monotonic() - t_start:.1f} s")


def test_upgrade_reboot_drains_each_host_and_guests_keep_running(cluster3: Cluster, guests: Guests) -> None:
    dist_b = built_dvp(version=B_VERSION)
    workers = cluster3.workers
    ups0 = uptimes(cluster3, guests.ips)
    t0 = time.monotonic()
    pids0 = libvirtd_pids(cluster3)
    done, result = upgrade(cluster3, dist_b, guests.script)
    took = time.monotonic() - t0
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

    after = assert_guests_kept(cluster3, guests, ups0, t0)
    for name in guests.ips:
        assert after[name]["nodeName"] != guests.before[name]["nodeName"], (name, after[name]["nodeName"])
    versions = node_versions(cluster3)
    assert set(versions.values()) == {B_VERSION}, versions
    assert not [n["metadata"]["name"] for n in cluster3.kubectl_json("get", "nodes")["items"]
                if n.get("spec", {}).get("unschedulable")]
    pids1 = libvirtd_pids(cluster3)
    assert all(pids1[h] != pids0[h] for h in pids0), (pids0, pids1)  # every host got the lab reboot


def test_upgrade_reboot_failing_midway_rolls_every_host_back(cluster3: Cluster, guests: Guests) -> None:
    refused = cluster3.workers[-1]  # the last host upgraded: the other two are done by then
    versions0 = node_versions(cluster3)
    done, result, ups0, t0 = refused_upgrade(cluster3, guests, built_dvp(version=C_VERSION), "")
    assert done.returncode != 0 and result.get("result") == "rolled-back", \
        f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    failure = result["record"]["failure"]
    assert (failure["host"], failure["step"]) == (refused.name, "reboot"), failure
    assert "lab reboot refused on this host" in failure["reason"], failure
    hosts = {h["name"]: h for h in result["record"]["hosts"]}
    for name, h in hosts.items():  # every host went forward (the refused one to its reboot), then back
        names = [s["name"] for s in h["steps"]]
        assert "replace" in names and h["state"] == "rolled-back", (name, names)
        back = [s for s in h["steps"] if s["name"].startswith("rollback-")]
        assert [s["name"] for s in back] == ["rollback-binary", "rollback-restart", "rollback-health",
                                             "rollback-uncordon"] and all(s["status"] == "ok" for s in back), back
    forward = [s for s in hosts[refused.name]["steps"] if not s["name"].startswith("rollback-")]
    assert (forward[-1]["name"], forward[-1]["status"]) == ("reboot", "failed"), forward
    assert node_versions(cluster3) == versions0
    assert not [n["metadata"]["name"] for n in cluster3.kubectl_json("get", "nodes")["items"]
                if n.get("spec", {}).get("unschedulable")]
    assert_guests_kept(cluster3, guests, ups0, t0)


def running_domains(cluster: Cluster) -> dict[str, list[str]]:
    """VM name -> the nodes whose libvirt runs a domain of it (this module's namespace)."""
    out: dict[str, list[str]] = {}
    for n in cluster.nodes:
        for dom in n.sh("virsh -c qemu:///system -q list --name").stdout.split():
            if f"{NS}_" in dom:
                out.setdefault(dom.split(f"{NS}_", 1)[1], []).append(n.node)
    return out


def test_upgrade_reboot_with_a_storage_migration_commits_before_the_drains_and_finishes(
        cluster3: Cluster, guests: Guests) -> None:
    dist_d = built_dvp(version=D_VERSION, extra_env=D_ENV)
    refused = cluster3.workers[-1]
    done, result, ups0, t0 = refused_upgrade(cluster3, guests, dist_d, " with a storage migration")
    hosts = {h["name"]: h for h in result.get("record", {}).get("hosts", [])}
    assert done.returncode == 1 and result.get("result") == "reboots-pending", \
        f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    record = result["record"]
    assert record["committed"] and (record["failure"]["host"], record["failure"]["step"]) == (refused.name, "reboot")
    for name, h in hosts.items():  # pass 1 restarted every host in place; no host was rolled back
        names = [s["name"] for s in h["steps"]]
        assert names.index("restart") < names.index("reboot-cordon") and not any(
            n.startswith("rollback-") for n in names), (name, names)
        assert ("reboot-uncordon" in names) == (name != refused.name), (name, names)
        if name != cluster3.master.name:  # a worker's VMs went to hosts the second pass had rebooted
            drained = next(s["message"] for s in h["steps"] if s["name"] == "drain")
            assert drained.startswith("no running VMs") or " VM(s) to rebooted nodes" in drained, (name, drained)
    assert set(node_versions(cluster3).values()) == {D_VERSION}
    assert json.loads(cluster3.kubectl("get", "--raw", "/version").stdout)["dvpDataVersion"] in (2, "2")
    after = assert_guests_kept(cluster3, guests, ups0, t0)
    placed = running_domains(cluster3)
    for name in guests.ips:  # the status names the one node that runs the domain: never the refused one
        assert placed.get(name) == [after[name]["nodeName"]] and after[name]["nodeName"] != refused.node, \
            (name, placed, after[name]["nodeName"])
    assert not [n["metadata"]["name"] for n in cluster3.kubectl_json("get", "nodes")["items"]
                if n.get("spec", {}).get("unschedulable")]

    pid0 = libvirtd_pids(cluster3)[refused.name]
    done, result = upgrade(cluster3, dist_d, guests.script)  # the same bundle finishes the reboots
    assert done.returncode == 0 and result.get("result") == "succeeded", \
        f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert "finishing" in done.stderr + done.stdout
    assert libvirtd_pids(cluster3)[refused.name] != pid0
    assert_guests_kept(cluster3, guests, ups0, t0)
    assert not [n["metadata"]["name"] for n in cluster3.kubectl_json("get", "nodes")["items"]
                if "virtualization.deckhouse.io/upgrade-rebooted" in n["metadata"].get("labels", {})]
    assert not [n["metadata"]["name"] for n in cluster3.kubectl_json("get", "nodes")["items"]
                if n.get("spec", {}).get("unschedulable")]
