"""The upgrade's decisions on plain data: version order and jump policy, bundle inspection,
preflight refusals, the plan, and records as `dvp upgrade history` reads them back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.internal import LABEL_HANDLER_VERSION
from controlplane.common.clusterversions import HANDLER_VERSION, ClusterVersions, NodeVersion, node_version
from installer.ssh.target import Endpoint, SSHTarget
from installer.upgrade.bundle import Bundle, BundleError, inspect_bundle
from installer.upgrade.plan import build_plan
from installer.upgrade.platform import Platform, PlatformHost
from installer.upgrade.preflight import disk_refusals, node_refusals, version_refusals, workload_refusals
from installer.upgrade.records import HostRecord, StepResult, UpgradeRecord
from installer.upgrade.versions import Version, VersionError, jump_refusal


@pytest.mark.parametrize(("lower", "higher"), [
    ("0.1.0", "0.1.1"), ("0.1.9", "0.2.0"), ("0.2.0-rc.1", "0.2.0"), ("0.2.0-rc.2", "0.2.0-rc.10"),
    ("0.9.0", "0.10.0"), ("1.0.0", "v1.0.1"),
], ids=["patch", "minor", "pre-release-before-release", "numeric-pre", "numeric-minor", "v-prefix"])
def test_version_order(lower: str, higher: str) -> None:
    assert Version.parse(lower) < Version.parse(higher)
    assert not Version.parse(higher) < Version.parse(lower)


@pytest.mark.parametrize("text", ["", "1.2", "latest", "1.2.3.4", "dvp 1.2.3"])
def test_not_a_version(text: str) -> None:
    with pytest.raises(VersionError, match="not a dvp version"):
        Version.parse(text)


@pytest.mark.parametrize(("current", "target", "allow", "reason"), [
    ("0.1.0", "0.1.3", False, None),
    ("0.1.0", "0.2.0", False, None),
    ("0.1.4", "0.2.7", False, None),
    ("0.1.0", "0.3.0", False, "skips 1 minor release.*upgrade to the latest 0.2.x first"),
    ("0.1.0", "0.5.0", False, "skips 3 minor"),
    ("0.9.0", "1.0.0", False, "crosses a major version"),
    ("0.2.0", "0.1.0", False, "needs --allow-downgrade"),
    ("0.2.0", "0.1.0", True, None),
    ("0.2.0", "0.2.0", False, "already runs 0.2.0"),
], ids=["patch", "next-minor", "next-minor-any-patch", "skip-one", "skip-three", "major", "downgrade-refused",
        "downgrade-allowed", "same"])
def test_jump_policy(current: str, target: str, allow: bool, reason: str | None) -> None:
    got = jump_refusal(current, target, allow_downgrade=allow)
    if reason is None:
        assert got is None
    else:
        assert got is not None
        import re
        assert re.search(reason, got), got


def _script(tmp_path: Path, body: str, *, mode: int = 0o755) -> Path:
    path = tmp_path / "dvp"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def test_bundle_is_run_and_checksummed(tmp_path: Path) -> None:
    path = _script(tmp_path, 'case "$1" in --version) echo "dvp, version 0.2.0";; '
                             'version) echo \'{"client": {"version": "0.2.0", "dataVersion": 2, "features": ["x"]}}\';; esac\n')
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    b = inspect_bundle(path, expected_sha256=digest.upper())
    assert (b.version, b.data_version, b.features, b.sha256) == ("0.2.0", 2, ("x",), digest)
    with pytest.raises(BundleError, match="SHA-256 is .* expected 00"):
        inspect_bundle(path, expected_sha256="00" * 32)


@pytest.mark.parametrize(("body", "mode", "message"), [
    ('echo "kubectl v1.28"\n', 0o755, "not a dvp binary"),
    ("exit 3\n", 0o755, "failed: exit status 3"),
    ('echo "dvp, version 0.2.0"\n', 0o644, "not executable"),
    ('case "$1" in --version) echo "dvp, version 0.2.0";; *) echo "{}";; esac\n', 0o755, "too old to be upgraded to"),
], ids=["other-program", "fails", "not-executable", "no-version-json"])
def test_bundle_refusals(tmp_path: Path, body: str, mode: int, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        inspect_bundle(_script(tmp_path, body, mode=mode))


def _bundle(version: str = "0.2.0", data: int = 2) -> Bundle:
    return Bundle(path=Path("/tmp/dvp"), version=version, data_version=data, sha256="ab" * 32, size=50 << 20)


def _cv(server: str = "0.1.0", nodes: list[NodeVersion] | None = None, data: int = 1) -> ClusterVersions:
    return ClusterVersions(server=server, data_version=data, controllers=server, controllers_leading=True,
                           nodes=nodes if nodes is not None else [NodeVersion("n1", server, True, False)])


def test_mixed_versions_are_refused_naming_each_component() -> None:
    cv = _cv(nodes=[NodeVersion("n1", "0.1.0", True, False), NodeVersion("n2", "0.2.0", True, False)])
    (r,) = version_refusals(cv, _bundle(), allow_downgrade=False)
    assert r.check == "versions.consistent" and "n2 0.2.0" in r.observed and "resumes" in r.fix


def test_a_bundle_that_cannot_read_the_datastore_is_refused() -> None:
    refusals = version_refusals(_cv(server="0.2.0", data=2), _bundle("0.1.5", 1), allow_downgrade=True)
    assert [r.check for r in refusals] == ["versions.datastore"]
    assert "data version 2" in refusals[0].observed and "dvp datastore restore" in refusals[0].fix


def test_allowed_upgrade_has_no_version_refusal() -> None:
    assert version_refusals(_cv(), _bundle(), allow_downgrade=False) == []


def _platform(*hosts: tuple[str, str, str]) -> Platform:
    out = []
    for name, role, node in hosts:
        target = SSHTarget(name=name, host=None, endpoint=Endpoint(address=f"10.0.0.{len(out) + 1}", port=22,  # type: ignore[arg-type]
                                                                    user="root"))
        out.append(PlatformHost(name, role, target, node=node))
    return Platform(hosts=out, known_hosts=None, bastions=None)  # type: ignore[arg-type]


def test_nodes_not_ready_or_missing_are_refused() -> None:
    cv = _cv(nodes=[NodeVersion("m", "0.1.0", True, False), NodeVersion("w1", "0.1.0", False, False, "LibvirtUnavailable")])
    refusals = node_refusals(cv, _platform(("m", "master", "m"), ("w1", "worker", "w1"), ("w2", "worker", "w2")))
    assert [(r.check, r.host) for r in refusals] == [("nodes.ready", "w1"), ("nodes.registered", "w2")]
    assert "LibvirtUnavailable" in refusals[0].observed


def _obj(kind: str, name: str, phase: str, ns: str = "default", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": ns}, "status": {"phase": phase}, **extra}


def test_transitional_vms_and_running_imports_are_refused() -> None:
    vms = [_obj("VirtualMachine", "a", "Running"), _obj("VirtualMachine", "b", "Migrating")]
    inst = [_obj("InternalVirtualMachineInstance", "c", "Starting"), _obj("InternalVirtualMachineInstance", "d", "Stopped")]
    imports = [_obj("VirtualImage", "img", "Provisioning"), _obj("VirtualDisk", "disk", "Ready")]
    refusals = workload_refusals(vms, inst, imports)
    assert [r.check for r in refusals] == ["vms.settled", "vms.settled", "images.idle"]
    assert "default/b (Migrating)" in refusals[0].observed and "default/c (Starting)" in refusals[1].observed
    assert "VirtualImage default/img" in refusals[2].observed
    assert workload_refusals(vms[:1], inst[1:], imports[1:]) == []


DF = """Filesystem     1024-blocks      Used Available Capacity Mounted on
/dev/vda         264000000  30000000  {free1}  12% /
/dev/vdb         100000000  10000000  {free2}  10% /var/lib/dvp
"""


def test_free_disk_adds_up_per_file_system() -> None:
    needs = {"/usr/local/bin": 100 << 20, "/var/lib/dvp": 200 << 20}
    ok = DF.format(free1=500 * 1024, free2=500 * 1024)
    assert disk_refusals("m", ok, needs=needs) == []
    short = DF.format(free1=500 * 1024, free2=100 * 1024)
    (r,) = disk_refusals("m", short, needs=needs)
    assert r.host == "m" and "/var/lib/dvp" in r.observed and "100 MiB free" in r.observed
    same_fs = DF.replace("/dev/vdb", "/dev/vda").replace("/var/lib/dvp\n", "/\n").format(free1=300 * 1024,
                                                                                           free2=300 * 1024)
    (r,) = disk_refusals("m", same_fs, needs=needs)  # 300 MiB + margin on one file system does not fit in 300
    assert "/usr/local/bin, /var/lib/dvp" in r.observed


def test_plan_orders_server_first_and_states_vm_impact() -> None:
    platform = _platform(("m", "master", "node-m"), ("w", "worker", "node-w"))
    instances = [
        {"metadata": {"name": "vm1", "namespace": "prod"}, "spec": {"nodeName": "node-w"}, "status": {"phase": "Running"}},
        {"metadata": {"name": "vm2", "namespace": "prod"}, "spec": {"nodeName": "node-w"}, "status": {"phase": "Stopped"}},
    ]
    plan = build_plan(platform, _bundle(), from_version="0.1.0", from_data_version=1, instances=instances,
                      backup_path="/var/lib/dvp/backups/x.db")
    doc = plan.to_json()
    assert [h["name"] for h in doc["hosts"]] == ["m", "w"]
    master, worker = doc["hosts"]
    assert any("back up the datastore" in s for s in master["steps"]) and "cordon Node node-w" in worker["steps"]
    assert master["restarted"] == ["dvp-server"] and worker["restarted"] == ["dvp-agent"]
    assert worker["vms"] == ["prod/vm1"] and "keep running" in worker["vmImpact"]
    assert any("storage migrations data version 1 -> 2" in s for s in master["steps"])
    assert doc["vmRestarts"] == [] and any("libvirt and QEMU are not replaced" in n for n in doc["notes"])


def test_record_round_trips_through_json() -> None:
    rec = UpgradeRecord.new(from_version="0.1.0", to_version="0.2.0", from_sha256="a", to_sha256="b")
    rec.hosts = [HostRecord("m", "master", "node-m", state="upgraded",
                            steps=[StepResult("stage", "ok", "t0", "t1", 1.5, "done")])]
    again = UpgradeRecord.from_json(rec.to_json())
    assert again == rec and again.to_json()["from"] == "0.1.0" and again.unfinished
    assert again.host("m").done("stage") and not again.host("m").done("restart")


def test_node_version_reads_annotation_label_or_kubelet_version() -> None:
    assert HANDLER_VERSION == LABEL_HANDLER_VERSION
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert node_version({"metadata": {"name": "n", "annotations": {HANDLER_VERSION: "0.2.0+b1"}},
                         "status": ready}).version == "0.2.0+b1"
    assert node_version({"metadata": {"name": "n"}, "status": {**ready, "nodeInfo": {"kubeletVersion": "dvp-0.1.0"}}}
                        ).version == "0.1.0"
    nv = node_version({"metadata": {"name": "n"}, "spec": {"unschedulable": True}, "status": {}})
    assert (nv.version, nv.ready, nv.unschedulable) == ("", False, True)
