"""Acceptance of the installer's whole life cycle through the built single binary onto a real
lab host (tests/support/hostlab.py; this machine's file system, the host's own network and PID
namespaces): an install interrupted by Ctrl-C (SIGINT) during its prepare phase records
`interrupted`, leaves no ssh process, and the printed `--resume` command finishes it →
`dvp uninstall --dry-run` lists and changes nothing → refused while a VirtualMachine exists →
`--keep-data --delete-vms` keeps the datastore and a re-install adopts it → a full uninstall
leaves nothing (paths, services, bridge, dnsmasq) and the preflight's leftover checks pass.

The tests of this module share one host and run in order (each builds on the previous one).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer import hostlayout
from tests.services.apiserver import KUBECTL
from tests.support.installed_host import INSTALLED_PATHS, InstallTarget, install_target

pytestmark = pytest.mark.integration

VM = """apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata: {name: keeper, namespace: default}
spec:
  virtualMachineClassName: generic
  runPolicy: Manual
  cpu: {cores: 1, coreFraction: 10%}
  memory: {size: 128Mi}
  blockDeviceRefs: [{kind: VirtualDisk, name: not-there}]
"""
MARKER = """apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachineClass
metadata: {name: adopted-marker}
spec:
  cpu: {type: Host}
"""


class Life(InstallTarget):
    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.dvp), *args], capture_output=True, text=True, timeout=timeout, env=self.env,
                              check=False)

    def install(self, *args: str) -> tuple[int, dict[str, Any], str]:
        done = self.run("install", "--config", str(self.config), "--state-dir", str(self.state), "-o", "json", *args)
        return done.returncode, _json(done.stdout), done.stderr

    def uninstall(self, *args: str) -> tuple[int, dict[str, Any], str]:
        done = self.run("uninstall", "--state-dir", str(self.state), "-o", "json", *args)
        return done.returncode, _json(done.stdout), done.stderr

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KUBECTL), "--kubeconfig", str(self.state / "kubeconfig"), *args], input=stdin,
                              capture_output=True, text=True, timeout=120, check=False)

    def on_host(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.host.nsenter(*argv), capture_output=True, text=True, timeout=60, check=False)

    def service_running(self) -> bool:
        return self.on_host("sh", "-c", hostlayout.service_command("dvp-server", "status")).returncode == 0

    def processes(self) -> list[str]:
        return self.on_host("sh", "-c", "for p in /proc/[0-9]*/comm; do cat $p; done 2>/dev/null").stdout.split()


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Life]:
    with install_target(Life, tmp_path_factory.mktemp("life"), host_name="life", cidr="10.66.12.0/24") as target:
        yield target


def _present() -> set[str]:
    return {p for p in INSTALLED_PATHS if os.path.lexists(p) and p != "/var/cache/dvp"}


def test_sigint_during_prepare_is_an_interruption_and_the_printed_resume_finishes(life: Life) -> None:
    runs = life.state / "runs"
    runs_before = set(runs.iterdir()) if runs.is_dir() else set()
    proc = subprocess.Popen(
        [str(life.dvp), "install", "--config", str(life.config), "--state-dir", str(life.state), "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=life.env, start_new_session=True,
    )
    run: Path | None = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            new = (set(runs.iterdir()) if runs.is_dir() else set()) - runs_before
            run = next(iter(new), None)
            events = run / "events.jsonl" if run is not None else None
            if events is not None and events.is_file() and any(
                    '"TaskProgress"' in line and '"prepare"' in line for line in events.read_text().splitlines()):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the install ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr[-2000:]
    out = _json(stdout)
    assert out["interrupted"] is True and out["failedPhase"] == "prepare"
    assert run is not None
    phases = {k: v["status"] for k, v in json.loads((run / "state.json").read_text())["phases"].items()}
    assert phases["prepare"] == "interrupted" and "bootstrap" not in phases
    ssh_left = subprocess.run(["pgrep", "-af", f"dvp-cp-{os.getuid()}-{proc.pid}"], capture_output=True, text=True)
    assert ssh_left.stdout.strip() == "", ssh_left.stdout  # no ControlMaster left behind
    (resume,) = out["nextSteps"]
    argv = shlex.split(resume)
    assert argv[:3] == [str(life.dvp), "install", "--resume"] and str(life.config) in argv

    done = subprocess.run(argv + ["-o", "json"], capture_output=True, text=True, env=life.env, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    final = {k: v["status"] for k, v in json.loads((run / "state.json").read_text())["phases"].items()}
    assert set(final.values()) == {"ok"}
    assert life.service_running()


def test_dry_run_lists_everything_and_changes_nothing(life: Life) -> None:
    before = _present()  # installed by the resumed install of the previous test
    assert {hostlayout.BINARY, hostlayout.CONFIG_DIR, hostlayout.STATE_DIR} <= before
    rc, out, err = life.uninstall("--dry-run")
    assert rc == 0, f"{out}\n{err}"
    (host,) = out["hosts"]
    assert host["dryRun"] is True
    assert before <= set(host["removed"])
    assert "dvp-server" in host["stopped"]
    assert "bridge dvpbr0" in host["deleted"]
    assert any(s.startswith("dnsmasq ") for s in host["stopped"])
    assert _present() == before and life.service_running()


def test_refused_while_a_vm_exists(life: Life) -> None:
    applied = life.kubectl("apply", "-f", "-", stdin=VM + "---\n" + MARKER)
    assert applied.returncode == 0, applied.stderr
    before = _present()
    rc, out, err = life.uninstall("--yes")
    assert rc == 2, f"{out}\n{err}"
    assert "default/keeper" in out["message"] and "--delete-vms" in out["message"]
    assert _present() == before and life.service_running()


def test_keep_data_then_a_reinstall_adopts_the_datastore(life: Life) -> None:
    rc, out, err = life.uninstall("--keep-data", "--delete-vms")
    assert rc == 0, f"{out}\n{err}"
    assert out["vms"] and out["vms"][0].startswith("default/keeper")
    kept = set(out["hosts"][0]["kept"])
    assert hostlayout.SERVER_DATA_DIR in kept
    assert Path(hostlayout.SERVER_DATA_DIR).is_dir() and any(Path(hostlayout.SERVER_DATA_DIR).iterdir())
    assert not Path(hostlayout.BINARY).exists() and not Path(hostlayout.CONFIG_DIR).exists()
    assert not life.service_running() and "dvp" not in life.processes()

    rc, out, err = life.install()
    assert rc == 0, f"{out}\n{err}"
    marker = life.kubectl("get", "virtualmachineclass", "adopted-marker", "-o", "name")
    assert marker.returncode == 0, marker.stderr  # the object from before the uninstall is still there
    vms = life.kubectl("get", "virtualmachines", "-A", "-o", "name")
    assert vms.returncode == 0 and vms.stdout.strip() == ""  # deleted through the API before


def test_uninstall_leaves_nothing_and_the_leftover_checks_pass(life: Life) -> None:
    t0 = time.monotonic()
    rc, out, err = life.uninstall("--yes")
    assert rc == 0, f"{out}\n{err}"
    assert time.monotonic() - t0 < 120
    assert _present() == set(), _present()
    assert not os.path.lexists("/var/cache/dvp")
    assert not life.service_running()
    left = life.processes()
    assert "dvp" not in left and "dnsmasq" not in left
    assert life.on_host("ip", "link", "show", "dvpbr0").returncode != 0  # the bridge is gone
    check = life.run("check", "--config", str(life.config), "-o", "json")
    report = _json(check.stdout)
    leftovers = {c["name"]: c for c in report["hosts"][0]["checks"] if c["name"].startswith("leftovers.")}
    assert leftovers and all(c["verdict"] == "passed" for c in leftovers.values()), leftovers
    again, out, _ = life.uninstall("--yes")  # nothing left to do: still fine
    assert again == 0 and out["hosts"][0]["removed"] == []
