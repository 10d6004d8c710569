"""VirtualMachinePool in a real `dvp server`, driven with kubectl 1.33: a pool applied in DVP's
manifest form gets its VMs (owned by it, labelled with its selector, each with its own disk),
`kubectl scale vmpool` moves it up and down through the `scale` subresource, `kubectl get
vmpool` shows DVP's columns, bad replicas are refused naming the field, a template change is
rolled out to the existing VM in place, and deleting the pool deletes its VMs. No nodes: the VMs stay Pending (runPolicy AlwaysOff), which is all scaling needs."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.vmpool import SCALE_DOWN_TARGETS
from tests.services import polling
from tests.services.apiserver import ApiServerProcess
from tests.services.kubectl import get, kubectl

pytestmark = pytest.mark.integration
UID_LABEL = "vmpool.virtualization.deckhouse.io/pool-uid"
SCALE_URL = "/apis/virtualization.deckhouse.io/v1alpha2/namespaces/default/virtualmachinepools"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("vmpool") / "data")
    srv.start(60)
    yield srv
    srv.stop()


eventually = functools.partial(polling.eventually, timeout=20, interval=0.2)

POOL = {
    "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachinePool",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 2, "scaleDownPolicy": "NewestFirst",
        "virtualDiskTemplates": [{"name": "root", "reclaim": {"onScaleDown": "Delete"},
                                  "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}],
        "virtualMachineTemplate": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"virtualMachineClassName": "generic", "runPolicy": "AlwaysOff",
                     "cpu": {"cores": 1}, "memory": {"size": "256Mi"},
                     "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"}]}}},
}


def members(server: ApiServerProcess, uid: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(server, "vm", "-l", f"{UID_LABEL}={uid}").get("items") or []
    return [vm for vm in items if not vm["metadata"].get("deletionTimestamp")]


def exactly(server: ApiServerProcess, uid: str, n: int) -> list[dict[str, Any]]:
    """The pool's members once there are exactly n of them."""
    def check() -> list[dict[str, Any]] | None:
        vms = members(server, uid)
        return vms if len(vms) == n else None
    found: list[dict[str, Any]] = eventually(check)
    return found


def scale_to(server: ApiServerProcess, uid: str, n: int) -> list[dict[str, Any]]:
    out = kubectl(server, "scale", "vmpool", "web", f"--replicas={n}").stdout
    assert "scaled" in out
    return exactly(server, uid, n)


def test_pool_scales_through_the_scale_subresource_and_takes_its_vms_along(server: ApiServerProcess) -> None:
    kubectl(server, "apply", "-f", "-", input=json.dumps(POOL))
    uid = get(server, "vmpool", "web")["metadata"]["uid"]
    vms = exactly(server, uid, 2)
    for vm in vms:
        meta = vm["metadata"]
        assert meta["name"].startswith("web-") and meta["labels"]["app"] == "web"
        assert meta["labels"]["vmpool.virtualization.deckhouse.io/pool"] == "web"
        assert [(r["kind"], r["name"], r["uid"], r["controller"]) for r in meta["ownerReferences"]] == [
            ("VirtualMachinePool", "web", uid, True)]
        assert vm["spec"]["blockDeviceRefs"] == [{"kind": "VirtualDisk", "name": f"{meta['name']}-root"}]
        disk_name = f"{meta['name']}-root"
        disk = eventually(functools.partial(get, server, "vd", disk_name))
        assert disk["metadata"]["ownerReferences"][0]["name"] == meta["name"]
    pool = eventually(lambda: (p := get(server, "vmpool", "web")).get("status", {}).get("replicas") == 2 and p)
    assert pool["status"]["selector"] == f"{UID_LABEL}={uid}" and pool["status"]["readyReplicas"] == 0
    assert {c["type"] for c in pool["status"]["conditions"]} == {"Available", "Progressing", "Synced"}

    scale = json.loads(kubectl(server, "get", "--raw", f"{SCALE_URL}/web/scale").stdout)
    assert (scale["kind"], scale["apiVersion"], scale["spec"], scale["status"]) == (
        "Scale", "autoscaling/v1", {"replicas": 2}, {"replicas": 2, "selector": f"{UID_LABEL}={uid}"})

    three = scale_to(server, uid, 3)
    assert get(server, "vmpool", "web")["spec"]["replicas"] == 3
    left = scale_to(server, uid, 1)  # NewestFirst: the oldest stays (the name breaks a tie within one second)
    oldest = min(three, key=lambda vm: (vm["metadata"]["creationTimestamp"], vm["metadata"]["name"]))
    assert left[0]["metadata"]["name"] == oldest["metadata"]["name"]
    # nothing of the removed members is left behind: their disks and IP addresses go with them
    keep = left[0]["metadata"]["name"]
    eventually(lambda: [d["metadata"]["name"] for d in get(server, "vd", "-l", f"{UID_LABEL}={uid}")["items"]
                        if not d["metadata"].get("deletionTimestamp")] == [f"{keep}-root"])
    eventually(lambda: sorted(r["name"] for ip in get(server, "vmip")["items"] if not ip["metadata"].get(
        "deletionTimestamp") for r in ip["metadata"].get("ownerReferences") or []) == [keep])

    table = kubectl(server, "get", "vmpool", "web").stdout.splitlines()
    assert table[0].split() == ["NAME", "REPLICAS", "READY", "AGE"]
    eventually(lambda: kubectl(server, "get", "vmpool", "web").stdout.splitlines()[1].split()[1:3] == ["1", "0"])

    for bad in ("-1", '"three"'):  # kubectl scale refuses -1 itself: the server is asked through patch
        out = kubectl(server, "patch", "vmpool", "web", "--subresource=scale", "--type=merge",
                      "-p", f'{{"spec":{{"replicas":{bad}}}}}', check=False)
        assert out.returncode != 0 and 'Scale "web" is invalid: spec.replicas: Invalid value' in out.stderr, out.stderr
    scale["metadata"]["resourceVersion"], scale["spec"]["replicas"] = "1", 2  # a stale Scale: 409, nothing written
    stale = kubectl(server, "replace", "--raw", f"{SCALE_URL}/web/scale", "-f", "-", input=json.dumps(scale),
                    check=False)
    assert stale.returncode != 0 and "the object has been modified" in stale.stderr, stale.stderr
    assert get(server, "vmpool", "web")["spec"]["replicas"] == 1

    # a template change is rolled out in place: the member keeps its name, takes the new spec and hash
    (kept,) = members(server, uid)
    kubectl(server, "patch", "vmpool", "web", "--type=merge", "-p",
            '{"spec":{"virtualMachineTemplate":{"spec":{"memory":{"size":"512Mi"}}}}}')
    want = eventually(lambda: (p := get(server, "vmpool", "web")).get("status", {}).get("desiredTemplateHash")
                      != kept["metadata"]["labels"]["vmpool.virtualization.deckhouse.io/template-hash"] and p)
    rolled = eventually(lambda: (v := get(server, "vm", kept["metadata"]["name"]))["metadata"]["labels"].get(
        "vmpool.virtualization.deckhouse.io/template-hash") == want["status"]["desiredTemplateHash"] and v)
    assert rolled["spec"]["memory"] == {"size": "512Mi"} and rolled["metadata"]["uid"] == kept["metadata"]["uid"]
    synced = eventually(lambda: next((c for c in get(server, "vmpool", "web")["status"]["conditions"]
                                      if c["type"] == "Synced" and c["status"] == "True"), None))
    assert synced["reason"] == "PoolSynced" and get(server, "vmpool", "web")["status"]["updatedReplicas"] == 1

    kubectl(server, "delete", "vmpool", "web", "--wait=false")
    assert eventually(lambda: not members(server, uid) and not get(server, "vmpool", "web"))


DOCS = Path(__file__).resolve().parents[2] / "fixtures" / "dvp_docs"
DOWN_WITH = "/apis/subresources.virtualization.deckhouse.io/v1alpha2/namespaces/ci/virtualmachinepools/runners/scaledownwith"


def test_the_guides_pool_applies_and_named_replicas_are_removed(server: ApiServerProcess) -> None:
    """DVP's user-guide pool, applied unchanged; `scaledownwith` removes exactly the replicas it
    names; a Retain disk outlives its replica and is reattached to the next; with
    scaleDownPolicy Explicit an unaddressed scale-down is refused."""
    kubectl(server, "create", "namespace", "ci")
    kubectl(server, "apply", "-f", str(DOCS / "vmpool-runners.yaml"))
    uid = get(server, "vmpool", "runners", "-n", "ci")["metadata"]["uid"]

    def replicas(n: int) -> list[str]:
        def check() -> list[str] | None:
            items = get(server, "vm", "-n", "ci", "-l", f"{UID_LABEL}={uid}").get("items") or []
            names = sorted(vm["metadata"]["name"] for vm in items if not vm["metadata"].get("deletionTimestamp"))
            return names if len(names) == n else None
        found: list[str] = eventually(check)
        return found

    names = replicas(3)
    chosen = names[1]  # not the one NewestFirst would pick by itself, necessarily
    cache = next(r["name"] for r in get(server, "vm", chosen, "-n", "ci")["spec"]["blockDeviceRefs"]
                 if r["name"].startswith("runners-cache-"))  # the pool's Retain disk: <pool>-<template>-<random>
    kubectl(server, "create", "--raw", DOWN_WITH, "-f", "-", input=json.dumps({"targets": [chosen]}))
    left = replicas(2)
    assert chosen not in left and get(server, "vmpool", "runners", "-n", "ci")["spec"]["replicas"] == 2
    # its root disk goes with it; its cache (Retain) stays, free, and the next replica gets it back
    eventually(lambda: not get(server, "vd", f"{chosen}-root", "-n", "ci"))
    freed = eventually(lambda: (d := get(server, "vd", cache, "-n", "ci"))["metadata"].get("annotations", {}).get(
        "vmpool.virtualization.deckhouse.io/freed-at") and d)
    assert [r["kind"] for r in freed["metadata"]["ownerReferences"]] == ["VirtualMachinePool"]
    kubectl(server, "scale", "vmpool", "runners", "-n", "ci", "--replicas=3")
    (added,) = set(replicas(3)) - set(left)
    assert cache in [r["name"] for r in get(server, "vm", added, "-n", "ci")["spec"]["blockDeviceRefs"]]
    kubectl(server, "create", "--raw", DOWN_WITH, "-f", "-", input=json.dumps({"targets": [added]}))
    assert replicas(2) == left
    bad = kubectl(server, "create", "--raw", DOWN_WITH, "-f", "-", input=json.dumps({"targets": ["nobody"]}),
                  check=False)
    assert bad.returncode != 0 and 'targets[0]: Invalid value: "nobody": not a replica' in bad.stderr, bad.stderr

    kubectl(server, "patch", "vmpool", "runners", "-n", "ci", "--type=merge", "-p",
            '{"spec":{"scaleDownPolicy":"Explicit"}}')
    refused = kubectl(server, "scale", "vmpool", "runners", "-n", "ci", "--replicas=1", check=False)
    assert refused.returncode != 0 and "scaleDownPolicy is Explicit" in refused.stderr, refused.stderr
    kubectl(server, "create", "--raw", DOWN_WITH, "-f", "-", input=json.dumps({"targets": [left[0]]}))
    assert replicas(1) == [left[1]]
    eventually(lambda: SCALE_DOWN_TARGETS not in (get(server, "vmpool", "runners", "-n", "ci")["metadata"]
                                                   .get("annotations") or {}))
    kubectl(server, "delete", "namespace", "ci", "--wait=false")

