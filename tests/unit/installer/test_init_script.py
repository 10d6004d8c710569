"""The LSB init script the install writes where systemd is not PID 1
(playbooks/roles/dvp_service/templates/dvp.init.j2), rendered and run with a stand-in daemon
that takes a moment to stop:
restarts that overlap (one begun by an installer that was then killed, one by its rerun) must
leave exactly one daemon, tracked by the PID file, and the daemon must not hold the lock."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

TEMPLATE = Path(__file__).parents[3] / "playbooks/roles/dvp_service/templates/dvp.init.j2"


SLOW_DAEMON = """#!/bin/sh
# a server that takes a moment to stop, so that overlapping restarts all wait on it
trap 'sleep 0.3; exit 0' TERM
while :; do sleep 0.1; done
"""


def _daemons(marker: str) -> list[int]:
    """The stand-in daemons of this test. A daemon's shell forks for each `sleep`, and until
    that child execs it has the daemon's command line too: a process whose parent is one of
    those found is such a fork, not a second daemon (CI caught one, under load)."""
    found = subprocess.run(["pgrep", "-f", f"slowd {marker}$"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    parents = {pid: _parent(pid) for pid in pids}
    return [pid for pid, parent in parents.items() if parent is not None and parent not in pids]


def _running(marker: str, timeout: float = 10.0) -> list[int]:
    """`_daemons` once there is one: `start-stop-daemon --background` returns after its fork, and
    the child may exec the daemon a moment later (CI caught none running, under load)."""
    deadline = time.monotonic() + timeout
    while not (found := _daemons(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone meanwhile: not a daemon that runs
    return int(stat.rpartition(")")[2].split()[1])


@pytest.fixture
def script(tmp_path: Path) -> Iterator[tuple[Path, str, Path]]:
    if shutil.which("start-stop-daemon") is None or shutil.which("flock") is None:
        pytest.fail("start-stop-daemon (dpkg) and flock (util-linux) are part of every Debian host")
    marker = str(900000 + tmp_path.stat().st_ino % 99999)  # this test's daemons, by their argument
    daemon = tmp_path / "slowd"
    daemon.write_text(SLOW_DAEMON)
    daemon.chmod(0o755)
    text = jinja2.Template(TEMPLATE.read_text()).render(
        ansible_managed="test", dvp_service_name="dvp-test", dvp_service_args=marker,
        dvp_layout={"binary": str(daemon), "run_dir": str(tmp_path / "run"), "log_dir": str(tmp_path / "log")})
    path = tmp_path / "dvp-test"
    path.write_text(text)
    path.chmod(0o755)
    yield path, marker, tmp_path / "run" / "dvp-test.pid"
    for pid in _daemons(marker):
        subprocess.run(["kill", "-9", str(pid)], check=False)


def test_overlapping_restarts_leave_one_daemon_in_the_pid_file(script: tuple[Path, str, Path]) -> None:
    path, marker, pidfile = script
    assert subprocess.run([path, "start"]).returncode == 0
    for _ in range(2):  # restarts begun 0.1 s apart: each new one meets the others' stop or start
        restarts = []
        for _ in range(4):
            restarts.append(subprocess.Popen([path, "restart"]))
            time.sleep(0.1)
        assert [p.wait(timeout=60) for p in restarts] == [0, 0, 0, 0]
        daemons = _running(marker)
        assert len(daemons) == 1, daemons
    assert int(pidfile.read_text()) == daemons[0]
    held = [Path(f"/proc/{daemons[0]}/fd", fd).readlink() for fd in Path(f"/proc/{daemons[0]}/fd").iterdir()
            if Path(f"/proc/{daemons[0]}/fd", fd).is_symlink()]
    assert not [f for f in held if str(f).endswith(".lock")], held
    status = subprocess.run([path, "status"], capture_output=True, text=True)
    assert status.returncode == 0 and str(daemons[0]) in status.stdout
    assert subprocess.run([path, "stop"]).returncode == 0
    assert _daemons(marker) == [] and not pidfile.exists()
