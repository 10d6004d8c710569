"""VM placement and node loss on a real three-host cluster (`cluster3`: `dist/dvp install
--config` onto one master and two workers on lab hosts), driven with kubectl 1.33.

Every node (workers with their own DVCR token) reports ClockSynchronized and DVCRAccess True.
Six VMs spread two per node; required anti-affinity keeps two labelled VMs apart that a
preference would put together; a nodeSelector pins one; a cordoned node is avoided. A worker's
`dvp agent` stopped: its Node goes Ready=Unknown within the grace period and the VM running
there says its node is lost; the agent started again: Ready, the VM reports from its instance
again, and the worker runs exactly one domain for it (adopted by uid, no duplicate).

The VMs boot from empty disks (no OS: QEMU runs the firmware, which is all placement, domain
adoption and node loss need), so no image import is involved.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from typing import Any

import pytest

from tests.services import polling
from tests.support.clusterlab import Cluster
from tests.support.upgradelab import LabNode

pytestmark = pytest.mark.integration
eventually = functools.partial(polling.eventually, timeout=300, interval=1.0)
GRACE = 40.0
"""The node lifecycle controller's default grace period (`--node-grace`)."""


def vm(name: str, *, run: str = "AlwaysOff", labels: dict[str, str] | None = None, **spec: Any) -> list[dict[str, Any]]:
    disk = {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualDisk",
            "metadata": {"name": f"{name}-root", "namespace": "default"},
            "spec": {"persistentVolumeClaim": {"size": "64Mi"}}}
    machine = {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
               "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
               "spec": {"virtualMachineClassName": "generic", "runPolicy": run,
                        "cpu": {"cores": 1, "coreFraction": "5%"}, "memory": {"size": "128Mi"},
                        "terminationGracePeriodSeconds": 1,  # no OS answers the power button: destroy at once
                        "blockDeviceRefs": [{"kind": "VirtualDisk", "name": f"{name}-root"}], **spec}}
    return [disk, machine]


def apply(cluster: Cluster, *vms: list[dict[str, Any]]) -> None:
    items = [doc for pair in vms for doc in pair]
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def get_vm(cluster: Cluster, name: str) -> dict[str, Any]:
    done = cluster.kubectl("get", "vm", name, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def placed(cluster: Cluster, *names: str) -> dict[str, str]:
    def where() -> dict[str, str] | None:
        found = {n: str(get_vm(cluster, n).get("status", {}).get("nodeName") or "") for n in names}
        return found if all(found.values()) else None
    result: dict[str, str] = eventually(where)
    return result


def running(cluster: Cluster, name: str) -> dict[str, Any]:
    conds = get_vm(cluster, name).get("status", {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "Running"), {})


def delete(cluster: Cluster, *names: str) -> None:
    cluster.kubectl("delete", "vm", *names, "--wait=false")
    eventually(lambda: all(not get_vm(cluster, n) for n in names))
    cluster.kubectl("delete", "vd", *(f"{n}-root" for n in names), "--wait=false", check=False)


def prefer(node: str) -> dict[str, Any]:
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}}]}}


def domains(node: LabNode) -> list[str]:
    """`name uuid` of each dvp domain the host's libvirt knows (running or not)."""
    done = node.sh("for d in $(virsh -c qemu:///system list --all --name | grep '^dvp-'); do "
                   "echo \"$d $(virsh -c qemu:///system domuuid $d)\"; done", check=False)
    return sorted(line.strip() for line in done.stdout.splitlines() if line.strip())


def test_every_node_reports_its_clock_in_sync_and_dvcr_accepting_it(cluster3: Cluster) -> None:
    def conditions() -> dict[str, dict[str, str]] | None:
        found = {n["metadata"]["name"]: {c["type"]: c["status"] for c in n["status"]["conditions"]}
                 for n in cluster3.kubectl_json("get", "nodes")["items"]}
        done = all(c.get("ClockSynchronized") == "True" and c.get("DVCRAccess") == "True" for c in found.values())
        return found if done else None
    found = eventually(conditions, timeout=120)
    assert set(found) == {n.node for n in cluster3.nodes}


def test_six_vms_spread_anti_affinity_and_node_selector(cluster3: Cluster) -> None:
    names = [f"spread-{i}" for i in range(6)]
    apply(cluster3, *(vm(n) for n in names))
    where = placed(cluster3, *names)
    assert sorted(Counter(where.values()).values()) == [2, 2, 2], where
    assert set(where.values()) == {n.node for n in cluster3.nodes}
    delete(cluster3, *names)

    master = cluster3.master.node
    anti = {**prefer(master), "virtualMachineAndPodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    apply(cluster3, vm("db-1", labels={"app": "db"}, affinity=anti))
    assert placed(cluster3, "db-1") == {"db-1": master}
    apply(cluster3, vm("db-2", labels={"app": "db"}, affinity=anti))
    assert placed(cluster3, "db-2")["db-2"] != master
    target = cluster3.workers[0].node
    apply(cluster3, vm("pinned", nodeSelector={"kubernetes.io/hostname": target}, affinity=prefer(master)))
    assert placed(cluster3, "pinned") == {"pinned": target}
    delete(cluster3, "db-1", "db-2", "pinned")


def test_cordoned_node_is_avoided(cluster3: Cluster) -> None:
    cordoned = cluster3.workers[0].node
    cluster3.kubectl("cordon", cordoned)
    try:
        names = [f"cordon-{i}" for i in range(3)]
        apply(cluster3, *(vm(n, affinity=prefer(cordoned)) for n in names))
        assert cordoned not in placed(cluster3, *names).values()
    finally:
        cluster3.kubectl("uncordon", cordoned)
    delete(cluster3, *names)


def test_stopped_agent_makes_its_node_lost_then_back_without_duplicate_domains(cluster3: Cluster) -> None:
    worker = cluster3.workers[1]
    apply(cluster3, vm("on-worker", run="AlwaysOn", nodeSelector={"kubernetes.io/hostname": worker.node}))
    assert placed(cluster3, "on-worker") == {"on-worker": worker.node}
    eventually(lambda: get_vm(cluster3, "on-worker").get("status", {}).get("phase") == "Running")
    uid = cluster3.kubectl_json("get", "internalvirtualmachineinstances.internal.virtualization.deckhouse.io",
                                "on-worker")["metadata"]["uid"]  # the domain's UUID is its instance's uid
    assert eventually(lambda: f"dvp-default_on-worker {uid}" in domains(worker))
    before = domains(worker)

    stopped = cluster3.service(worker, "stop")
    assert stopped.returncode == 0, stopped.stderr
    t0 = time.monotonic()
    try:
        def lost() -> dict[str, Any] | None:
            nodes = cluster3.kubectl_json("get", "node", worker.node)
            ready = next(c for c in nodes["status"]["conditions"] if c["type"] == "Ready")
            return ready if ready["status"] == "Unknown" else None
        ready = eventually(lost, timeout=GRACE + 60)
        took = time.monotonic() - t0
        assert ready["reason"] == "NodeStatusUnknown" and worker.node in ready["message"]
        assert took <= GRACE + 60, took
        cond = eventually(lambda: (c := running(cluster3, "on-worker")).get("reason") == "NodeUnresponsive" and c,
                          timeout=60)
        assert cond["status"] == "Unknown" and f"node {worker.node} is lost" in cond["message"]
    finally:
        started = cluster3.service(worker, "start")
        assert started.returncode == 0, started.stderr
    cluster3.wait_ready(timeout=180)
    back = eventually(lambda: (c := running(cluster3, "on-worker")).get("reason") == "VirtualMachineRunning" and c)
    assert back["status"] == "True"
    after = domains(worker)
    assert after == before and [d for d in after if d.endswith(uid)] == [f"dvp-default_on-worker {uid}"], after
    delete(cluster3, "on-worker")
