"""Logging in to real sshd servers: key, password, agent; becoming root with sudo (with a
password, NOPASSWD, wrong password, no sudo rights); and secrets never showing up in logs or
reports."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.checks.ansible_facts import write_fact_cache
from installer.checks.render import report_json
from installer.checks.runner import run_preflight
from tests.integration.installer.conftest import ConfigFactory, Lab, host

pytestmark = pytest.mark.integration

BLOCKED_AFTER_SSH = ["connection.shell", "connection.sudo_available", "connection.facts", "virt.cpu_flags", "network.ports"]


@pytest.fixture(autouse=True)
def sshd_logs_on_failure(lab: Lab) -> Iterator[None]:
    """Printed after each test; pytest shows it only for a failing one: what the sshd servers logged."""
    yield
    for name in ("plain", "port2222", "pvm-this-machine"):
        print(f"--- sshd log of {name} ---\n{lab[name].sshd_log_tail()}")


def keygen_fingerprint(pub: str, tmp: Path) -> str:
    path = tmp / "key.pub"
    path.write_text(pub)
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_key_login_as_root(lab: Lab, make_config: ConfigFactory, tmp_path: Path) -> None:
    run = run_preflight(make_config([host(lab["plain"])]))
    report = run.report.hosts[0]
    ssh = report.result("connection.ssh")
    assert ssh.verdict == "passed", ssh
    assert f"ssh root@{lab['plain'].address}:22" in ssh.observed
    # the host key we verified is the one sshd serves (fingerprint computed by OpenSSH itself)
    assert keygen_fingerprint(lab["plain"].host_key_pub, tmp_path) in ssh.observed
    assert report.result("connection.sudo_allowed").observed == "logged in as root"
    assert report.result("connection.facts").verdict == "passed"
    assert report.result("network.hostname").observed == "node-plain"
    # the facts are kept for the install phase, in Ansible's jsonfile fact-cache layout
    [cached] = write_fact_cache(run.states, tmp_path / "facts")
    facts = json.loads(cached.read_text())
    assert cached.name == "plain"
    assert facts["ansible_nodename"] == "node-plain"
    assert lab["plain"].address in facts["ansible_all_ipv4_addresses"]  # (it also links to "inner")
    assert facts["ansible_pkg_mgr"] == "apt"


def test_key_login_on_a_custom_port(lab: Lab, make_config: ConfigFactory) -> None:
    report = run_preflight(make_config([host(lab["port2222"])])).report.hosts[0]
    assert report.result("connection.ssh").verdict == "passed"
    assert f":{lab['port2222'].port}" in report.result("connection.ssh").observed


def test_password_login_and_sudo_with_password(lab: Lab, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    user = lab.lab.user("dvpop")
    monkeypatch.setenv("LAB_SSH_PASSWORD", user.password)
    config = make_config(
        [host(lab["plain"])],
        ssh={"user": "dvpop", "privateKeyFiles": [], "password": {"fromEnv": "LAB_SSH_PASSWORD"},
             "sudoPassword": {"fromEnv": "LAB_SSH_PASSWORD"}},
    )
    report = run_preflight(config).report.hosts[0]
    assert report.result("connection.ssh").verdict == "passed"
    assert report.result("connection.sudo_available").observed.startswith("dvpop (uid 61001) has ")
    assert report.result("connection.sudo_allowed").observed == "sudo as dvpop (password accepted)"
    assert report.result("connection.facts").verdict == "passed"
    # the facts were gathered as root: the root-only /etc/shadow-protected view is not needed,
    # but the probe ran as dvpop and the gather under sudo kept DVP_HOST_ROOT (none here)
    assert report.result("network.hostname").observed == "node-plain"


def test_sudo_nopasswd_never_sends_the_password(lab: Lab, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_SUDO_PASSWORD", "never-used-secret")
    config = make_config([host(lab["pvm-this-machine"])], ssh={"user": "dvpnopw", "sudoPassword": {"fromEnv": "LAB_SUDO_PASSWORD"}})
    run = run_preflight(config)
    report = run.report.hosts[0]
    assert report.result("connection.sudo_allowed").observed == "sudo as dvpnopw (no password asked)", report.results[:4]
    # DVP_HOST_ROOT survived sudo's environment reset: facts come from the recorded files
    assert run.states[0].facts is not None
    assert run.states[0].facts.host_root == str(lab.roots["pvm-this-machine"])
    assert "never-used-secret" not in report_json(run.report)


def test_wrong_sudo_password_blocks_the_rest(lab: Lab, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_SSH_PASSWORD", lab.lab.user("dvpop").password)
    monkeypatch.setenv("LAB_SUDO_PASSWORD", "not-the-sudo-password")
    config = make_config(
        [host(lab["plain"])],
        ssh={"user": "dvpop", "privateKeyFiles": [], "password": {"fromEnv": "LAB_SSH_PASSWORD"},
             "sudoPassword": {"fromEnv": "LAB_SUDO_PASSWORD"}},
    )
    run = run_preflight(config)
    report = run.report.hosts[0]
    sudo = report.result("connection.sudo_allowed")
    assert sudo.verdict == "error"
    assert sudo.observed == "sudo rejected the password of dvpop"
    assert report.result("connection.facts").verdict == "blocked"
    assert report.result("connection.facts").blocked_by == "connection.sudo_allowed"
    assert report.result("virt.cpu_flags").verdict == "blocked"
    errors = [r.name for r in report.results if r.verdict == "error"]
    assert errors == ["connection.sudo_allowed"]  # one error, the rest blocked
    assert run.report.exit_code == 1
    assert "not-the-sudo-password" not in report_json(run.report)


def test_sudo_asking_for_a_password_we_do_not_have(lab: Lab, make_config: ConfigFactory) -> None:
    config = make_config([host(lab["plain"])], ssh={"user": "dvpop"})
    sudo = run_preflight(config).report.hosts[0].result("connection.sudo_allowed")
    assert sudo.verdict == "error"
    assert sudo.observed == "sudo asks dvpop for a password and none is configured"
    assert "ssh.sudoPassword" in sudo.fix


def test_user_without_sudo_rights(lab: Lab, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_SUDO_PASSWORD", lab.lab.user("dvpnosudo").password)
    config = make_config([host(lab["plain"])], ssh={"user": "dvpnosudo", "sudoPassword": {"fromEnv": "LAB_SUDO_PASSWORD"}})
    sudo = run_preflight(config).report.hosts[0].result("connection.sudo_allowed")
    assert sudo.verdict == "error"
    assert sudo.observed.startswith("sudo refused dvpnosudo:"), sudo.observed
    assert "not in the sudoers file" in sudo.observed
    assert "sudoers" in sudo.fix


def test_wrong_ssh_password(lab: Lab, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LAB_SSH_PASSWORD", "wrong-password-4711")
    config = make_config([host(lab["plain"])], ssh={"user": "dvpop", "privateKeyFiles": [], "password": {"fromEnv": "LAB_SSH_PASSWORD"}})
    run = run_preflight(config)
    report = run.report.hosts[0]
    ssh = report.result("connection.ssh")
    assert ssh.verdict == "error"
    assert ssh.observed == f"authentication as dvpop on {lab['plain'].address}:22 failed (tried: default keys in ~/.ssh, password)"
    for name in BLOCKED_AFTER_SSH:
        assert report.result(name).verdict == "blocked", name
    assert "wrong-password-4711" not in caplog.text
    assert "wrong-password-4711" not in report_json(run.report)


def test_secrets_never_reach_logs_or_reports(lab: Lab, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # paramiko's own debug logging included
    secret = lab.lab.user("dvpop").password
    monkeypatch.setenv("LAB_SSH_PASSWORD", secret)
    config = make_config(
        [host(lab["plain"]), host(lab["port2222"])],
        ssh={"user": "dvpop", "privateKeyFiles": [], "password": {"fromEnv": "LAB_SSH_PASSWORD"},
             "sudoPassword": {"fromEnv": "LAB_SSH_PASSWORD"}},
    )
    run = run_preflight(config)
    assert all(h.result("connection.facts").verdict == "passed" for h in run.report.hosts)
    assert caplog.records, "debug logging was captured"
    assert secret not in caplog.text
    assert secret not in report_json(run.report)
    assert secret not in repr(run.states)
    assert secret not in json.dumps([st.facts.to_dict() for st in run.states if st.facts])


@pytest.fixture
def agent(lab: Lab, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real ssh-agent holding the lab's client key, stopped by PID."""
    sock = tmp_path / "agent.sock"
    out = subprocess.run(["ssh-agent", "-a", str(sock), "-s"], capture_output=True, text=True, check=True).stdout
    pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        env = {"SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(lab.lab.client_key)], env={**os.environ, **env}, check=True, capture_output=True)
        yield env
    finally:
        os.kill(pid, 15)


def test_agent_login(lab: Lab, make_config: ConfigFactory, agent: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", agent["SSH_AUTH_SOCK"])
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))  # no default keys to fall back on
    with_agent = make_config([host(lab["plain"])], ssh={"privateKeyFiles": [], "useAgent": True})
    assert run_preflight(with_agent).report.hosts[0].result("connection.ssh").verdict == "passed"
    without = make_config([host(lab["plain"])], ssh={"privateKeyFiles": [], "useAgent": False})
    ssh = run_preflight(without).report.hosts[0].result("connection.ssh")
    assert ssh.verdict == "error"
    assert "no credentials" in ssh.observed or "failed" in ssh.observed
