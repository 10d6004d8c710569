"""Host keys are verified against known_hosts: an unknown key is refused with its fingerprint
unless accepted explicitly (flag or a prompt callback), and a changed key is always refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from installer.checks.runner import run_preflight
from tests.integration.installer.conftest import ConfigFactory, Lab, host

pytestmark = pytest.mark.integration


def fingerprint_of(pub: str, tmp: Path) -> str:
    path = tmp / "host.pub"
    path.write_text(pub)
    return subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True, check=True).stdout.split()[1]


def test_unknown_host_key_is_refused_with_its_fingerprint(lab: Lab, make_config: ConfigFactory, tmp_path: Path) -> None:
    known = tmp_path / "empty_known_hosts"
    known.write_text("")
    run = run_preflight(make_config([host(lab["plain"])], known_hosts=known))
    ssh = run.report.hosts[0].result("connection.ssh")
    fp = fingerprint_of(lab["plain"].host_key_pub, tmp_path)
    assert ssh.verdict == "error"
    assert ssh.observed == f"host key of {lab['plain'].address} is not in {known}: ED25519 {fp}"
    assert "--accept-new-host-keys" in ssh.fix
    assert known.read_text() == ""  # nothing recorded
    assert run.report.hosts[0].result("connection.facts").verdict == "blocked"


def test_accepting_new_keys_records_them_for_the_next_run(lab: Lab, make_config: ConfigFactory, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"  # directory does not exist yet
    target = lab["port2222"]
    config = make_config([host(target)], known_hosts=known)
    first = run_preflight(config, accept_new_host_keys=True).report.hosts[0]
    assert first.result("connection.ssh").verdict == "passed"
    kind, blob = target.host_key_pub.split()[:2]
    assert known.read_text() == f"[{target.address}]:{target.port} {kind} {blob}\n"
    assert oct(known.stat().st_mode & 0o777) == "0o600"
    second = run_preflight(config).report.hosts[0]  # no acceptance needed any more
    assert second.result("connection.ssh").verdict == "passed"
    # OpenSSH agrees with what we wrote
    out = subprocess.run(
        ["ssh-keygen", "-F", f"[{target.address}]:{target.port}", "-f", str(known)], capture_output=True, text=True
    )
    assert out.returncode == 0 and blob in out.stdout


def test_changed_host_key_is_always_refused(lab: Lab, make_config: ConfigFactory, tmp_path: Path) -> None:
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    kind, blob = (tmp_path / "other.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"{lab['plain'].address} {kind} {blob}\n")
    before = known.read_text()
    config = make_config([host(lab["plain"])], known_hosts=known)
    ssh = run_preflight(config, accept_new_host_keys=True).report.hosts[0].result("connection.ssh")
    assert ssh.verdict == "error"
    offered = fingerprint_of(lab["plain"].host_key_pub, tmp_path)
    recorded = fingerprint_of(f"{kind} {blob}", tmp_path)
    assert ssh.observed == (
        f"host key of {lab['plain'].address} CHANGED: known_hosts has ED25519 {recorded}, "
        f"the host offers ED25519 {offered} (possible man-in-the-middle; refused)"
    )
    assert f"ssh-keygen -R '{lab['plain'].address}'" in ssh.fix
    assert known.read_text() == before


def test_prompt_callback_decides_about_unknown_keys(lab: Lab, make_config: ConfigFactory, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    asked: list[tuple[str, str, str]] = []

    def refuse(name: str, kind: str, fp: str) -> bool:
        asked.append((name, kind, fp))
        return False

    config = make_config([host(lab["plain"])], known_hosts=known)
    assert run_preflight(config, confirm_host_key=refuse).report.hosts[0].result("connection.ssh").verdict == "error"
    assert asked == [(lab["plain"].address, "ED25519", fingerprint_of(lab["plain"].host_key_pub, tmp_path))]
    accepted = run_preflight(config, confirm_host_key=lambda *a: True).report.hosts[0]
    assert accepted.result("connection.ssh").verdict == "passed"
    assert lab["plain"].address in known.read_text()
