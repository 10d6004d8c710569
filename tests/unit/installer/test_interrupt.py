"""Ctrl-C during an install is an interruption, not a failure: the signal sets a flag (no
KeyboardInterrupt inside a library), a second one acts as usual, and the resume command printed
is exact (absolute config and state paths, the same options)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from installer.install import interrupt
from installer.install.engine import InstallOptions
from installer.install.interrupt import Interrupt, catch_signals, close_control_masters, control_dir


def test_first_signal_sets_the_flag_second_acts_as_usual() -> None:
    interrupt = Interrupt()
    with catch_signals(interrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupt.is_set() and interrupt.signal_name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_resume_command_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    options = InstallOptions(state_dir=Path("state dir"), accept_new_host_keys=True, skip_checks=("network.ports",),
                             command="/usr/local/bin/dvp")
    assert options.resume_command(Path("install.yaml")) == (
        f"/usr/local/bin/dvp install --resume --config {tmp_path}/install.yaml "
        f"--state-dir '{tmp_path}/state dir' --accept-new-host-keys --skip network.ports")


def test_control_dir_is_short_private_and_removed() -> None:
    path = control_dir()
    assert path.is_dir() and (path.stat().st_mode & 0o777) == 0o700
    assert len(str(path)) + 41 < 107  # room for ansible's %C socket name
    assert close_control_masters(path) == 0
    assert not path.exists()


def test_directories_of_install_processes_gone_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed install left its control directory: the next one removes it, and leaves those of
    running processes, other users' names and links alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    uid = os.getuid()
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f"dvp-cp-{uid}-{dead.pid}"
    orphan.mkdir(mode=0o700)
    (orphan / "socket-name").write_text("")  # not a socket: `ssh -O exit` fails on it, removal goes on
    alive = tmp_path / f"dvp-cp-{uid}-1"  # PID 1 runs
    alive.mkdir()
    other_user = tmp_path / f"dvp-cp-{uid + 1}-{dead.pid}"
    other_user.mkdir()
    target = tmp_path / "not-ours"
    target.mkdir()
    link = tmp_path / f"dvp-cp-{uid}-{dead.pid + 100000}"
    link.symlink_to(target)
    path = control_dir()
    assert path.is_dir()
    assert not orphan.exists()
    assert alive.is_dir() and other_user.is_dir() and link.is_symlink() and target.is_dir()
    close_control_masters(path)


def test_a_directory_another_install_removes_meanwhile_is_passed_over(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Two installs of one user sweep at once: the other removes a stale directory between this
    one's glob and its look at the directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"dvp-cp-{os.getuid()}-{dead.pid}"
    stale.mkdir(mode=0o700)

    def gone_meanwhile(pid: int) -> bool:
        stale.rmdir()
        return False

    monkeypatch.setattr(interrupt, "_running", gone_meanwhile)
    path = control_dir()
    assert path.is_dir() and not stale.exists()
    close_control_masters(path)
