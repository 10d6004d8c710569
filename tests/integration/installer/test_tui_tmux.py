"""The install wizard for real, in a terminal: `dvp install --edit FILE` (what `dvp install`
runs on a terminal) inside tmux on a private socket, driven with `send-keys` and read with
`capture-pane`, from welcome through hosts (the form), the live preflight of a real sshd
host, settings and review to a saved file that `dvp config validate` accepts; the
confirmation modal is answered "no". The tmux server is stopped by its PID at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.installer.conftest import ConfigFactory, Lab, host

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


class Tmux:
    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.pid = 0

    def __call__(self, *args: str) -> str:
        # COLUMNS/LINES (set under pytest) would override the pane's size in the app
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        res = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True,
                             timeout=20, env=env)
        assert res.returncode == 0, f"tmux {' '.join(args)}: {res.stderr}"
        return res.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self("send-keys", "-t", "tui", *(["-l"] if literal else []), *keys)
        time.sleep(0.3)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "tui")

    def wait(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen()}")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    workdir = Path(tempfile.mkdtemp(prefix="dvp-tmux-"))  # short: socket paths are limited
    t = Tmux(workdir / "sock")
    try:
        yield t
    finally:
        if t.pid:
            with contextlib.suppress(Exception):
                t("kill-server")
            for _ in range(50):
                try:
                    os.kill(t.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(t.pid, signal.SIGKILL)
        t.socket.unlink(missing_ok=True)
        workdir.rmdir()


def test_the_wizard_in_a_real_terminal(lab: Lab, make_config: ConfigFactory, tmp_path: Path, tmux: Tmux) -> None:
    given = tmp_path / "given.yaml"
    make_config([host(lab["pvm-this-machine"], role="master")], profile="evaluation", write_to=given)
    saved = tmp_path / "saved" / "install.yaml"
    command = f"cd {REPO} && exec {sys.executable} -m installer.cli.main install --edit {given}"
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "tui", "-x", "140", "-y", "45", command)
    tmux.pid = int(tmux("display-message", "-p", "#{pid}").strip())

    tmux.wait("Choose the target and the check profile")
    tmux.keys("C-n")
    tmux.wait("The machines to install on")
    tmux.keys("e")  # edit the (only, selected) host in the form
    tmux.wait("Edit host")
    tmux.keys("Tab")  # address -> name
    tmux.keys("C-u")
    tmux.keys("node_1", literal=True)
    tmux.keys("C-s")
    tmux.wait("is not a valid host name")  # the config's own message, under the field
    tmux.keys("C-u")
    tmux.keys("node-1", literal=True)
    tmux.keys("C-s")
    shown = tmux.wait("The machines to install on")
    assert "node-1" in shown and lab["pvm-this-machine"].address in shown

    tmux.keys("C-n")
    shown = tmux.wait("node-1: done: ", timeout=90)  # "... passed, N warnings, 0 errors, N blocked"
    assert " 0 errors" in shown and "warnings" in shown, shown
    assert "virt.cpu_flags" in shown and "warning" in shown, shown
    tmux.keys("C-n")
    tmux.wait("Networks and storage")
    tmux.keys("Tab")  # VM networks -> DVCR size
    tmux.keys("C-u")
    tmux.keys("75Gi", literal=True)
    tmux.keys("C-n")
    shown = tmux.wait("The config the unattended mode takes")
    assert "dvcrStorageSize: 75Gi" in shown
    tmux.keys("Tab")  # the YAML -> "Save to"
    tmux.keys("C-u")
    tmux.keys(str(saved), literal=True)
    tmux.keys("C-s")
    tmux.wait(f"saved: {saved}")

    res = subprocess.run([sys.executable, "-m", "installer.cli.main", "config", "validate", str(saved)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "valid (target embedded, 1 host, profile evaluation)" in res.stdout
    doc = yaml.safe_load(saved.read_text())
    assert doc["hosts"][0]["name"] == "node-1"
    assert doc["virtualization"]["dvcrStorageSize"] == "75Gi"

    tmux.keys("C-n")
    tmux.wait("nothing is changed")
    tmux.keys("n")
    tmux.wait("The config the unattended mode takes")
    tmux.keys("C-q")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "tui" in subprocess.run(
            ["tmux", "-S", str(tmux.socket), "list-sessions"], capture_output=True, text=True).stdout:
        time.sleep(0.2)
    assert subprocess.run(["tmux", "-S", str(tmux.socket), "has-session", "-t", "tui"],
                          capture_output=True).returncode != 0, "the wizard did not quit on ctrl+q"
