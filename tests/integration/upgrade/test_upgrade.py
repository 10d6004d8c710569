"""`dvp upgrade` on a real platform: a lab host (netns + PID namespace + sshd, its own libvirtd)
with version A installed per the on-host layout and two VMs booted from the guest test image,
upgraded to version B with the built binaries, over SSH. In order (one platform for the module):

1. `--dry-run` prints the plan and changes nothing (host files and API objects compared);
2. B made to fail its health check: automatic rollback to A (binary, datastore restored after
   B migrated it), VMs untouched, exit 1 naming host, step and reason;
3. the installer killed with SIGKILL mid-upgrade: `dvp upgrade` again finds the unfinished record
   and finishes: B everywhere, the migration's field filled, every object intact, and every
   guest's uptime kept rising (never rebooted, same libvirt domain ids);
4. `dvp upgrade history` shows both upgrades.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.nodemetrics import USAGE_ANNOTATION
from controlplane.common.kube.client import NAMESPACES, NODES, KubeClient, Resource
from controlplane.nodehandler.context import INSTANCES, VOLUMES
from installer import hostlayout
from nodeimage.guest import GuestImage
from tests.integration.nodehandler.support import instance, volume, wait_for
from tests.integration.upgrade.conftest import B_VERSION
from tests.support.upgradelab import UpgradeLab

pytestmark = pytest.mark.integration
CLASSES = Resource("virtualization.deckhouse.io", "v1alpha2", "virtualmachineclasses", "VirtualMachineClass",
                   namespaced=False)
NS = "upg"
VMS = {"vm-a": ("52:54:00:5a:00:0a", "10.66.0.20"), "vm-b": ("52:54:00:5a:00:0b", "10.66.0.21")}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CACHE_ENV = {**os.environ, "DVP_CACHE_DIR": "/tmp/dvp-upgrade-tests-cache"}
"""The binaries this test runs unpack here, not in /var/cache/dvp, which the install tests clean."""


def dvp(binary: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout, env=CACHE_ENV)


def versions(binary: Path, lab: UpgradeLab) -> dict[str, Any]:
    done = dvp(binary, "version", "--cluster", "--kubeconfig", str(lab.kubeconfig), "-o", "json", timeout=60)
    doc: dict[str, Any] = json.loads(done.stdout)["cluster"]
    return doc


def all_versions(doc: dict[str, Any]) -> set[str]:
    return {doc["server"]["version"], doc["controllers"]["version"], *(n["version"] for n in doc["nodes"])}


@pytest.fixture(scope="module")
def lab(dist_a: Path, dist_b: Path, guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[UpgradeLab]:
    lab = UpgradeLab()
    try:
        lab.install_by_hand(dist_a)
        kube = KubeClient.from_kubeconfig(lab.kubeconfig)
        wait_for(lambda: (kube.get_or_none(NODES, lab.master.node) or {}).get("status"), timeout=60,
                 what="the master's Node")
        kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        kube.create(CLASSES, {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineClass",
                              "metadata": {"name": "upgrade-probe"}, "spec": {"cpu": {"type": "Host"}}})
        node = lab.master.node
        for name, (mac, ip) in VMS.items():
            kube.create(VOLUMES, volume(f"{name}-root", node, "64Mi", image_ref=f"file://{guest_image.qcow2}",
                                        namespace=NS))
            kube.create(INSTANCES, instance(name, node, namespace=NS, disks=[{"name": "root", "volume": {
                "name": f"{name}-root"}}], nics=[{"name": "default", "mac": mac, "ip": ip}]))
        ips = [ip for _, ip in VMS.values()]
        wait_for(lambda: all(lab.uptimes(lab.master, ips).values()), timeout=180, every=1, what="guests answering")
        lab.config = lab.install_config(tmp_path_factory.mktemp("upgrade") / "install.yaml")  # type: ignore[attr-defined]
        lab.state_dir = tmp_path_factory.mktemp("state")  # type: ignore[attr-defined]
        yield lab
    finally:
        lab.close()


def upgrade(lab: UpgradeLab, installer: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = dvp(installer, "upgrade", "--config", str(lab.config), "--state-dir", str(lab.state_dir),  # type: ignore[attr-defined]
               *args, timeout=timeout)
    if done.returncode != 0:  # shown with a failing test's report: what the master's server logged
        log = lab.master.path(f"{hostlayout.LOG_DIR}/dvp-server.log")
        tail = log.read_text(errors="replace").splitlines()[-60:] if log.exists() else ["(no server log)"]
        print("--- the master's dvp-server log ---", *tail, sep="\n")
    return done


def host_files(lab: UpgradeLab) -> dict[str, str]:
    """Every file of the layout that an upgrade writes, with its hash (logs and the live datastore aside)."""
    m, out = lab.master, {}
    for inside in (hostlayout.BIN_DIR, hostlayout.CONFIG_DIR, "/etc/init.d", hostlayout.BACKUP_DIR,
                   f"{hostlayout.STATE_DIR}/upgrades"):
        root = m.path(inside)
        for p in sorted(root.rglob("*")) if root.exists() else []:
            if p.is_file():
                out[f"{inside}/{p.relative_to(root)}"] = sha(p)
    return out


def api_objects(lab: UpgradeLab) -> dict[str, Any]:
    """Specs, labels and annotations of the objects users and the upgrade touch (status moves on its own)."""
    kube = KubeClient.from_kubeconfig(lab.kubeconfig)
    out = {}
    for res in (INSTANCES, VOLUMES, CLASSES, NAMESPACES, NODES):
        for obj in kube.list(res)["items"]:
            meta = obj["metadata"]
            # the node handler's usage figures are live readings, rewritten every few seconds
            annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != USAGE_ANNOTATION}
            out[f"{res.plural}/{meta.get('namespace', '')}/{meta['name']}"] = {
                "uid": meta["uid"], "spec": obj.get("spec"), "labels": meta.get("labels"),
                "annotations": annotations}
    return out


def domain_ids(lab: UpgradeLab) -> dict[str, str]:
    out = lab.master.sh("virsh -c qemu:///system -q list").stdout
    return {p[1]: p[0] for p in (line.split() for line in out.splitlines()) if len(p) >= 2}


def uptimes(lab: UpgradeLab) -> dict[str, float]:
    got = lab.uptimes(lab.master, [ip for _, ip in VMS.values()])
    assert all(v is not None for v in got.values()), got
    return {k: float(v) for k, v in got.items() if v is not None}


def test_version_cluster_shows_a_everywhere(lab: UpgradeLab, dist_a: Path) -> None:
    doc = versions(dist_a, lab)
    assert all_versions(doc) == {"0.1.0"} and doc["server"]["dataVersion"] == 1
    assert doc["controllers"]["leading"] and [n["name"] for n in doc["nodes"]] == [lab.master.node]


def test_dry_run_changes_nothing(lab: UpgradeLab, dist_b: Path) -> None:
    files, objects = host_files(lab), api_objects(lab)
    done = upgrade(lab, dist_b, "--bundle", str(dist_b), "--dry-run", "-o", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["plan"]
    assert (plan["from"], plan["to"], plan["dataVersion"]) == ("0.1.0", B_VERSION, {"from": 1, "to": 2})
    (host,) = plan["hosts"]
    assert host["name"] == "m" and host["restarted"] == ["dvp-server"] and sorted(host["vms"]) == \
        [f"{NS}/{name}" for name in sorted(VMS)]
    assert host_files(lab) == files
    assert api_objects(lab) == objects


def test_failed_health_check_rolls_back_to_a_with_vms_untouched(lab: UpgradeLab, dist_a: Path, dist_b: Path) -> None:
    ids, before, t0 = domain_ids(lab), uptimes(lab), time.monotonic()
    lab.master.write("/etc/dvp/upgrade-test-fail", b"server\n")  # B's failure switch (upgrade-test builds only)
    try:
        done = upgrade(lab, dist_b, "--bundle", str(dist_b), "--server-timeout", "20")
    finally:
        lab.master.sh("rm -f /etc/dvp/upgrade-test-fail")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "upgrade failed on m at step health" in done.stdout and "/readyz answers 503" in done.stdout
    assert "rolled back: every host runs 0.1.0 again" in done.stdout
    assert sha(lab.master.path(hostlayout.BINARY)) == sha(dist_a)
    doc = versions(dist_a, lab)
    assert all_versions(doc) == {"0.1.0"} and doc["server"]["dataVersion"] == 1  # the backup was restored
    kube = KubeClient.from_kubeconfig(lab.kubeconfig)
    assert "upgradeTestLevel" not in kube.get(CLASSES, "upgrade-probe")["spec"]
    after, elapsed = uptimes(lab), time.monotonic() - t0
    assert domain_ids(lab) == ids
    assert all(after[ip] - before[ip] >= elapsed - 2 for ip in before), (before, after, elapsed)


def test_killed_installer_then_rerun_finishes_the_upgrade(lab: UpgradeLab, dist_b: Path) -> None:
    ids, before, objects, t0 = domain_ids(lab), uptimes(lab), api_objects(lab), time.monotonic()
    state = lab.state_dir  # type: ignore[attr-defined]
    runs_before = set(Path(state, "runs").iterdir())
    proc = subprocess.Popen([str(dist_b), "upgrade", "--config", str(lab.config), "--state-dir", str(state),  # type: ignore[attr-defined]
                             "--bundle", str(dist_b)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env=CACHE_ENV)

    def restarting() -> bool:
        runs = set(Path(state, "runs").iterdir()) - runs_before
        return any("m restart start" in (r / "upgrade.log").read_text() for r in runs if (r / "upgrade.log").exists())

    try:
        wait_for(restarting, timeout=300, every=0.05, what="the upgrade restarting dvp-server")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = upgrade(lab, dist_b, "--bundle", str(dist_b))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "found the unfinished upgrade" in done.stdout and "finishing it" in done.stdout
    assert sha(lab.master.path(hostlayout.BINARY)) == sha(dist_b)
    assert not list(lab.master.path(hostlayout.BIN_DIR).glob(".dvp.upgrade-*"))
    doc = versions(dist_b, lab)
    assert all_versions(doc) == {B_VERSION} and doc["server"]["dataVersion"] == 2
    kube = KubeClient.from_kubeconfig(lab.kubeconfig)
    assert kube.get(CLASSES, "upgrade-probe")["spec"]["upgradeTestLevel"] == "B"  # the storage migration ran
    now = api_objects(lab)
    assert now.keys() == objects.keys()
    for key, obj in objects.items():
        if key.startswith("virtualmachineclasses/"):
            obj["spec"]["upgradeTestLevel"] = "B"
        if key.startswith("nodes/"):  # the handler's version label and annotation moved to B
            continue
        assert now[key] == obj, key
    after, elapsed = uptimes(lab), time.monotonic() - t0
    assert domain_ids(lab) == ids
    assert all(after[ip] - before[ip] >= elapsed - 2 for ip in before), (before, after, elapsed)


def test_history_lists_both_upgrades(lab: UpgradeLab, dist_b: Path) -> None:
    done = dvp(dist_b, "upgrade", "history", "--config", str(lab.config), "-o", "json", timeout=60)  # type: ignore[attr-defined]
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [(r["from"], r["to"], r["state"]) for r in records] == [("0.1.0", B_VERSION, "rolled-back"),
                                                                     ("0.1.0", B_VERSION, "succeeded")]
    failed, ok = records
    assert failed["failure"]["host"] == "m" and failed["failure"]["step"] == "health" and failed["migrations_ran"]
    steps = [s["name"] for s in ok["hosts"][0]["steps"]]
    assert steps[:4] == ["stage", "previous", "backup", "replace"] and "health" in steps
    assert ok["ended"] and all(s["status"] == "ok" for s in ok["hosts"][0]["steps"])
