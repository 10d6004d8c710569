"""Timeouts, parallelism and bastions against real hosts: an unreachable host fails within the
connect timeout without stalling the others; at most `ssh.parallelism` hosts are worked on at
once; a host behind a bastion is reached through it."""

from __future__ import annotations

import threading
import time

import pytest

from installer.checks.model import CheckResult, HostReport
from installer.checks.runner import run_preflight
from tests.integration.installer.conftest import ConfigFactory, Lab, host

pytestmark = pytest.mark.integration

# how much longer than its timeout a failing host may take to be reported: generous, as these
# check that the timeout is honoured at all (no 75 s TCP default), not how fast the machine is
SLACK = 5.0


class Recorder:
    """A listener that notes when hosts start and finish their connection check."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.connected_at: dict[str, float] = {}
        self.t0 = time.monotonic()

    def host_started(self, host: str, total: int) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def host_phase(self, host: str, phase: str) -> None:
        if phase == "evaluating":
            with self.lock:
                self.active -= 1

    def check_finished(self, host: str, result: CheckResult) -> None:
        if result.name == "connection.ssh":
            self.connected_at[host] = time.monotonic() - self.t0

    def host_finished(self, report: HostReport) -> None:
        pass


def test_unreachable_host_times_out_without_stalling_the_others(lab: Lab, make_config: ConfigFactory) -> None:
    # the three good hosts take about 1 s together on the other worker when the machine is idle;
    # the timeout leaves them room on a loaded machine (other test runs, emulated guests)
    timeout = 10.0
    hosts = [
        {"address": lab.blackhole, "role": "master", "name": "void"},
        host(lab["plain"]), host(lab["port2222"]), host(lab["twin1"]),
    ]
    config = make_config(hosts, ssh={"connectTimeoutSeconds": timeout, "parallelism": 2})
    rec = Recorder()
    report = run_preflight(config, listener=rec).report
    void = report.host("void")
    ssh = void.result("connection.ssh")
    assert ssh.verdict == "error"
    assert ssh.observed == f"no TCP connection to {lab.blackhole}:22 within {timeout:g} s"
    assert void.duration_ms < (timeout + SLACK) * 1000
    # with two workers, the three good hosts were all connected on the other worker while the
    # unreachable one was still waiting for its timeout
    for name in ("plain", "p2222", "twin1"):
        assert report.host(name).result("connection.ssh").verdict == "passed"
        assert rec.connected_at[name] < rec.connected_at["void"], rec.connected_at


def test_silent_server_fails_within_the_connect_timeout(lab: Lab, make_config: ConfigFactory) -> None:
    address, _ = lab.silent
    config = make_config([{"address": address, "role": "master", "name": "silent"}], ssh={"connectTimeoutSeconds": 1.5})
    started = time.monotonic()
    ssh = run_preflight(config).report.hosts[0].result("connection.ssh")
    elapsed = time.monotonic() - started
    assert ssh.verdict == "error"
    assert ssh.observed == f"no SSH handshake with {address}:22 within 1.5 s"
    assert elapsed < 1.5 + SLACK


def test_parallelism_is_bounded(lab: Lab, make_config: ConfigFactory) -> None:
    names = ["plain", "port2222", "twin1", "twin2", "intel-nested", "amd-no-nested"]
    config = make_config([host(lab[n]) for n in names], ssh={"parallelism": 2})
    rec = Recorder()
    report = run_preflight(config, listener=rec).report
    assert all(h.result("connection.facts").verdict == "passed" for h in report.hosts)
    assert rec.max_active == 2


def test_host_behind_a_bastion(lab: Lab, make_config: ConfigFactory) -> None:
    inner = lab["inner"]
    bastion = {"address": lab["plain"].address}
    via = run_preflight(make_config([host(inner)], ssh={"bastion": bastion})).report.hosts[0]
    assert via.result("connection.ssh").verdict == "passed"
    assert f"via root@{lab['plain'].address}:22" in via.result("connection.ssh").observed
    assert via.result("network.hostname").observed == "node-inner"
    direct = run_preflight(make_config([host(inner)])).report.hosts[0].result("connection.ssh")
    assert direct.verdict == "error"
    assert direct.observed == f"no route to {inner.address}:22"


def test_bastion_host_key_is_verified_too(lab: Lab, make_config: ConfigFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    known = tmp_path / "known_hosts"
    known.write_text(lab["inner"].known_hosts_line())  # the target is known, the bastion is not
    config = make_config([host(lab["inner"])], ssh={"bastion": {"address": lab["plain"].address}}, known_hosts=known)
    ssh = run_preflight(config).report.hosts[0].result("connection.ssh")
    assert ssh.verdict == "error"
    assert ssh.observed.startswith(f"host key of {lab['plain'].address} is not in {known}: ED25519 SHA256:")


def test_hanging_command_times_out_and_others_carry_on(lab: Lab, make_config: ConfigFactory) -> None:
    config = make_config([host(lab["slow"]), host(lab["plain"])], ssh={"commandTimeoutSeconds": 2})
    started = time.monotonic()
    report = run_preflight(config).report
    assert time.monotonic() - started < 2 + 3
    slow = report.host("slow")
    assert slow.result("connection.sudo_allowed").verdict == "passed"
    facts = slow.result("connection.facts")
    assert facts.verdict == "error"
    assert facts.observed == "fact gathering on slow did not finish within 2.0 s"
    assert slow.result("virt.cpu_flags").verdict == "blocked"
    assert report.host("plain").result("connection.facts").verdict == "passed"
