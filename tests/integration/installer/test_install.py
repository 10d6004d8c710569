"""Acceptance of `dvp install` through the built single binary (tests/support/dist.py) onto a
real lab host (sshd in its own network/PID/UTS namespaces, this machine's file system): a
failing phase names host, task and reason and `--resume` finishes after the fix; the platform
then answers kubectl with the Node Ready and the virtualization CRDs; a second run changes
nothing; a run killed in the middle resumes and finishes.

The tests of this module share one host and run in order (each builds on the previous one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer import hostlayout
from tests.services.apiserver import KUBECTL
from tests.support.installed_host import InstallTarget, install_target

pytestmark = pytest.mark.integration

BAD_PACKAGE = "dvp-no-such-package"


class InstallLab(InstallTarget):
    def install(self, *args: str, timeout: float = 600) -> tuple[int, dict[str, object], str]:
        done = subprocess.run(
            [str(self.dvp), "install", "--config", str(self.config), "--state-dir", str(self.state), "-o", "json", *args],
            capture_output=True, text=True, timeout=timeout, env=self.env, check=False,
        )
        try:
            data = json.loads(done.stdout)
        except ValueError:
            data = {}
        return done.returncode, data, done.stderr

    def newest_run(self) -> Path:
        return sorted((self.state / "runs").iterdir())[-1]


@pytest.fixture(scope="module")
def install_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstallLab]:
    with install_target(InstallLab, tmp_path_factory.mktemp("install"), host_name="inst", cidr="10.66.10.0/24") as target:
        yield target


def _phases(run_dir: Path) -> dict[str, str]:
    state = json.loads((run_dir / "state.json").read_text())
    return {name: entry["status"] for name, entry in state["phases"].items()}


def test_failing_phase_names_host_task_reason_and_resume_finishes(install_lab: InstallLab) -> None:
    rc, out, err = install_lab.install("--extra-vars", json.dumps({"dvp_extra_packages": [BAD_PACKAGE]}))
    assert rc == 1, err
    assert out["failedPhase"] == "prepare"
    message = str(out["message"])
    assert f"host {install_lab.host.address}" in message
    assert "'Install QEMU, libvirt and dnsmasq'" in message
    assert BAD_PACKAGE in message and "No package matching" in message
    failed_run = install_lab.newest_run()
    assert _phases(failed_run) == {"validate": "ok", "preflight": "ok", "prepare": "failed"}
    assert not Path(hostlayout.BINARY).exists()  # nothing after the failed phase ran

    rc, out, err = install_lab.install("--resume")
    assert rc == 0, f"{out}\n{err}"
    assert install_lab.newest_run() == failed_run  # the same run, continued
    statuses = {p["phase"]: p["status"] for p in out["phases"]}  # type: ignore[union-attr]
    assert statuses == {"validate": "ok", "preflight": "done-before", "prepare": "ok", "bootstrap": "ok",
                        "controlplane": "ok", "verify": "ok"}
    assert _phases(failed_run) == dict.fromkeys(("validate", "preflight", "prepare", "bootstrap", "controlplane",
                                                 "verify"), "ok")
    assert Path(out["kubeconfig"]) == install_lab.state / "kubeconfig"  # type: ignore[arg-type]


def test_installed_platform_answers_kubectl(install_lab: InstallLab) -> None:
    kubeconfig = str(install_lab.state / "kubeconfig")
    nodes = json.loads(subprocess.run([str(KUBECTL), "--kubeconfig", kubeconfig, "get", "nodes", "-o", "json"],
                                      capture_output=True, text=True, check=True).stdout)
    ready = {n["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True"
                                        for c in n["status"]["conditions"]) for n in nodes["items"]}
    assert ready == {install_lab.host.hostname: True}
    crds = subprocess.run([str(KUBECTL), "--kubeconfig", kubeconfig, "get", "crd", "-o", "name"],
                          capture_output=True, text=True, check=True).stdout.split()
    for kind in ("virtualmachines", "virtualdisks", "virtualimages", "clustervirtualimages", "virtualmachineclasses"):
        assert f"customresourcedefinition.apiextensions.k8s.io/{kind}.virtualization.deckhouse.io" in crds
    # the layout the upgrade relies on: the binary, configs, and a running service with a PID file
    assert Path(hostlayout.BINARY).read_bytes() == install_lab.dvp.read_bytes()
    assert Path(hostlayout.SERVER_CONFIG).is_file() and Path(hostlayout.AGENT_CONFIG).is_file()
    status = install_lab.host.run("sh", "-c", hostlayout.service_command("dvp-server", "status"))
    assert status.returncode == 0, status.stdout + status.stderr
    assert Path(hostlayout.service_paths("dvp-server").pid_file).is_file()


def test_second_run_changes_nothing(install_lab: InstallLab) -> None:
    rc, out, err = install_lab.install()
    assert rc == 0, f"{out}\n{err}"
    assert out["changed"] == {install_lab.host.address: 0}
    run = install_lab.newest_run()
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    progress = [e for e in events if e["type"] == "TaskProgress"]
    assert progress and max(e["ok"] for e in progress) > 5  # tasks did run, and found nothing to change
    assert all(e["changed"] == 0 for e in progress)
    # ansible's own recap agrees
    for phase in ("prepare", "bootstrap", "controlplane"):
        stdout = (run / "ansible" / "artifacts" / phase / "stdout").read_text()
        assert "changed=0" in stdout and "changed=1" not in stdout


def test_killed_run_resumes_and_finishes(install_lab: InstallLab) -> None:
    # give the bootstrap phase real work: no server config, service stopped
    stop = install_lab.host.run("sh", "-c", hostlayout.service_command("dvp-server", "stop"))
    assert stop.returncode == 0, stop.stderr
    Path(hostlayout.SERVER_CONFIG).unlink()
    runs_before = set((install_lab.state / "runs").iterdir())
    proc = subprocess.Popen(
        [str(install_lab.dvp), "install", "--config", str(install_lab.config), "--state-dir", str(install_lab.state)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=install_lab.env, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        run: Path | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            new = set((install_lab.state / "runs").iterdir()) - runs_before
            run = next(iter(new), None)
            # the run's state (written atomically, after the phase's first event) is what a
            # resume reads: kill once it says bootstrap is running
            if run is not None and (run / "state.json").is_file() and \
                    _phases(run).get("bootstrap") == "running":
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the install ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert run is not None
    assert _phases(run)["bootstrap"] == "running"
    assert _phases(run)["prepare"] == "ok"

    rc, out, err = install_lab.install("--resume")
    assert rc == 0, f"{out}\n{err}"
    assert install_lab.newest_run() == run
    statuses = {p["phase"]: p["status"] for p in out["phases"]}  # type: ignore[union-attr]
    assert statuses["prepare"] == "done-before" and statuses["bootstrap"] == "ok" and statuses["verify"] == "ok"
    assert Path(hostlayout.SERVER_CONFIG).is_file()
    status = install_lab.host.run("sh", "-c", hostlayout.service_command("dvp-server", "status"))
    assert status.returncode == 0
