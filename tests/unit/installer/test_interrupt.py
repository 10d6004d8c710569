"""Ctrl-C during an install is an interruption, not a failure: the signal sets a flag (no
KeyboardInterrupt inside a library), a second one acts as usual, and the resume command printed
is exact (absolute config and state paths, the same options)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

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
