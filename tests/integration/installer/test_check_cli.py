"""`dvp check` as users run it (a subprocess of the real CLI) against real hosts: exit
statuses 0/1/2, the JSON document validated against the schema in docs/check-json.md, the
rich tables, skipping by name, and `localhost` through a local connection (no SSH)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from installer.checks.catalog import check_names
from tests.integration.installer.conftest import ConfigFactory, Lab, host

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def schema() -> dict[str, Any]:
    doc = (REPO / "docs" / "check-json.md").read_text()
    block = doc.split("## Schema", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)  # type: ignore[no-any-return]


def dvp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "installer.cli.main", *args],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=120,
    )


def test_json_report_matches_the_documented_schema(lab: Lab, make_config: ConfigFactory, tmp_path: Path) -> None:
    path = tmp_path / "install.yaml"
    make_config([host(lab["pvm-this-machine"], role="master"), host(lab["twin1"]), {"address": lab.blackhole, "role": "worker", "name": "void"}],
                ssh={"connectTimeoutSeconds": 1}, write_to=path)
    res = dvp("check", "--config", str(path), "-o", "json")
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    jsonschema.validate(report, schema())
    assert [h["name"] for h in report["hosts"]] == ["pvm", "twin1", "void"]
    for h in report["hosts"]:
        assert [c["name"] for c in h["checks"]] == check_names()
    void = report["hosts"][2]
    assert void["checks"][0]["verdict"] == "error"
    assert {c["verdict"] for c in void["checks"][1:]} == {"blocked"}
    assert report["exitCode"] == 1 and report["ok"] is False
    assert report["summary"]["error"] == sum(h["summary"]["error"] for h in report["hosts"])


def test_exit_status_zero_with_warnings_and_skips(lab: Lab, make_config: ConfigFactory, tmp_path: Path) -> None:
    path = tmp_path / "install.yaml"
    make_config([host(lab["pvm-this-machine"], role="master")], profile="evaluation", write_to=path)
    res = dvp("check", "--config", str(path), "-o", "json", "--skip", "resources.disk")
    assert res.returncode == 0, res.stdout
    report = json.loads(res.stdout)
    checks = {c["name"]: c for c in report["hosts"][0]["checks"]}
    assert checks["virt.cpu_flags"]["verdict"] == "warning"
    assert checks["virt.cpu_flags"]["message"] == "no hardware virtualization; VMs will run under software emulation"
    assert checks["resources.disk"]["verdict"] == "skipped"
    assert report["skipped"] == ["resources.disk"]
    assert report["summary"]["error"] == 0 and report["summary"]["warning"] >= 1


@pytest.mark.parametrize("columns", ["80", "200"], ids=["80-columns", "200-columns"])
def test_exit_status_one_and_a_line_per_check_at_any_width(lab: Lab, make_config: ConfigFactory, tmp_path: Path,
                                                           columns: str) -> None:
    """`dvp check | cat`: off a terminal, one whole line per check whatever the width."""
    path = tmp_path / "install.yaml"
    make_config([host(lab["pvm-this-machine"], role="master"), host(lab["intel-nested"])], write_to=path)
    res = dvp("check", "--config", str(path), env={"COLUMNS": columns})
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert any(re.fullmatch(r"host pvm: 10\.[0-9.]+, master, ssh", ln) for ln in lines)
    assert any(re.fullmatch(r"host intel: 10\.[0-9.]+, worker, ssh", ln) for ln in lines)
    for name in ("pvm", "intel"):
        mine = [ln for ln in lines if ln.startswith(f"{name} ")]
        assert [ln.split()[1] for ln in mine] == check_names()  # one line per check, in catalog order
        assert all(ln.split()[2] in ("pass", "FAIL", "warn", "blocked", "skipped") for ln in mine)
    cpu = next(ln for ln in lines if ln.startswith("pvm virt.cpu_flags "))
    assert cpu.startswith("pvm virt.cpu_flags FAIL no hardware virtualization; VMs will run under software emulation")
    assert " — " in cpu and "\n" not in cpu
    assert not any(ch in res.stdout for ch in "│┃╭┏")
    summary = lines[-1]
    assert summary.startswith("failed on pvm, intel: ")
    assert re.search(r"\d+ checks: \d+ passed, \d+ warnings?, \d+ errors?, \d+ blocked", summary)


def test_exit_status_two_for_an_invalid_config(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: dvp.deckhouse.io/v1alpha1\nkind: InstallConfig\nhosts:\n  - address: 10.0.0.300\n    role: master\n")
    res = dvp("check", "--config", str(path), "-o", "json")
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        f'{path}:1:1 virtualization: required field is missing',
        f'{path}:4:5 hosts[0].address: "10.0.0.300" is not an IP address or host name',
    ]
    assert dvp("check", "--config", str(path), "--skip", "no.such.check").returncode == 2


def test_localhost_uses_a_local_connection(tmp_path: Path, lab: Lab) -> None:
    path = tmp_path / "install.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "dvp.deckhouse.io/v1alpha1", "kind": "InstallConfig",
        "ssh": {"knownHostsFile": str(tmp_path / "none")},  # never read: no SSH at all
        "hosts": [{"address": "localhost", "role": "master"}],
        "virtualization": {"virtualMachineCIDRs": ["10.66.10.0/24"]},
    }))
    res = dvp("check", "--config", str(path), "-o", "json", env={"DVP_HOST_ROOT": str(lab.roots["intel-nested"])})
    report = json.loads(res.stdout)
    h = report["hosts"][0]
    checks = {c["name"]: c for c in h["checks"]}
    assert h["connection"] == "local"
    assert checks["connection.ssh"]["observed"].startswith("local connection as root (no SSH)")
    assert checks["connection.facts"]["observed"].endswith(f"host files under {lab.roots['intel-nested']}")
    assert checks["virt.cpu_flags"]["verdict"] == "passed"  # judged on the recorded Intel files
    assert checks["network.hostname"]["observed"] == os.uname().nodename  # live state: this machine
    assert not (tmp_path / "none").exists()


def test_list_and_help() -> None:
    res = dvp("check", "--list")
    assert res.returncode == 0
    for name in check_names():
        assert name in res.stdout
    assert "--accept-new-host-keys" in dvp("check", "--help").stdout
    listed = json.loads(dvp("check", "--list", "-o", "json").stdout)
    assert [c["name"] for c in listed] == check_names()
    assert next(c for c in listed if c["name"] == "virt.cpu_flags")["severity"] == "varies"


@pytest.mark.parametrize("columns", ["80", "200"], ids=["80-columns", "200-columns"])
def test_install_dry_run_prints_whole_lines_and_names_qemu_conf(tmp_path: Path, columns: str) -> None:
    """`dvp install --dry-run | cat`: every path whole on its own line, /etc/libvirt/qemu.conf too."""
    storage = "/srv/a/rather/long/directory/for/the/virtual/machine/disks/of/this/platform/volumes"
    path = tmp_path / "install.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "dvp.deckhouse.io/v1alpha1", "kind": "InstallConfig",
        "hosts": [{"address": "192.0.2.10", "role": "master"}],
        "virtualization": {"virtualMachineCIDRs": ["10.66.10.0/24"], "vmStorageDirectory": storage},
    }))
    res = dvp("install", "--config", str(path), "--dry-run", env={"COLUMNS": columns})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("192.0.2.10 (192.0.2.10, master)")
    assert any(ln.strip().startswith("write: /etc/libvirt/qemu.conf (edited: user, group") for ln in lines)
    assert any(storage + "/" in ln for ln in lines)  # never cut
    assert "  write: /usr/local/bin/dvp" in lines
