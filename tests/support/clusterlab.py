"""A platform of several lab hosts installed the way users install it: `dist/dvp install --config`
over SSH onto one master and N workers (tests/support/upgradelab.py hosts: own network, PID and
mount namespaces, own sshd and libvirtd, dvp's directories private and absent at first, all on
one LAN bridge).

`Cluster` is what multi-host tests get (the session fixture `cluster3` in tests/conftest.py: one
master and two workers, installed once per test session): the kubeconfig the install fetched,
the lab nodes (`LabNode.sh()` runs a command inside a host), each host's address and node name,
`kubectl()` (kubectl 1.33) against the cluster, and `install()` to run the installer again
(with hosts added or removed) as the acceptance tests do.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from installer import hostlayout
from tests.support.dist import built_dvp
from tests.support.upgradelab import LabNode, UpgradeLab

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".cache/kubectl-v33/kubectl/kubectl"
CHECKS = {"profile": "evaluation"}
"""Lab hosts are VMs without nested virtualization: the evaluation profile (software emulation allowed)."""


@dataclass
class InstallRun:
    rc: int
    out: dict[str, Any]
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0 and bool(self.out.get("ok"))

    def phases(self) -> dict[str, str]:
        return {p["phase"]: p["status"] for p in self.out.get("phases", [])}

    def describe(self) -> str:
        return f"exit {self.rc}: {json.dumps(self.out, indent=1)[-4000:]}\n{self.stderr[-2000:]}"


@dataclass
class Cluster:
    lab: UpgradeLab
    dvp: Path
    work: Path
    members: list[LabNode] = field(default_factory=list)
    """The hosts the last install config named."""

    @property
    def master(self) -> LabNode:
        return self.lab.master

    @property
    def nodes(self) -> list[LabNode]:
        return list(self.members)

    @property
    def workers(self) -> list[LabNode]:
        return [n for n in self.members if n.role == "worker"]

    @property
    def addresses(self) -> dict[str, str]:
        """Node name -> the host's address on the lab LAN (its InternalIP)."""
        return {n.node: n.host.address for n in self.members}

    @property
    def config(self) -> Path:
        return self.work / "install.yaml"

    @property
    def state(self) -> Path:
        return self.work / "state"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    def write_config(self, nodes: list[LabNode] | None = None, *, path: Path | None = None) -> Path:
        chosen = nodes if nodes is not None else (self.members or self.lab.nodes)
        return self.lab.install_config(path or self.config, nodes=chosen, checks=CHECKS)

    def install(self, *args: str, nodes: list[LabNode] | None = None, timeout: float = 900) -> InstallRun:
        """`dvp install --config` with the hosts `nodes` (default: the cluster's, at first every lab
        host); on success they become the cluster's hosts."""
        chosen = nodes if nodes is not None else (self.members or self.lab.nodes)
        self.write_config(chosen)
        done = subprocess.run(
            [str(self.dvp), "install", "--config", str(self.config), "--state-dir", str(self.state), "-o", "json", *args],
            capture_output=True, text=True, timeout=timeout, env=self.lab.binary_env(), check=False,
        )
        try:
            out = json.loads(done.stdout)
        except ValueError:
            out = {}
        run = InstallRun(done.returncode, out if isinstance(out, dict) else {}, done.stderr)
        if run.ok:
            self.members = list(chosen)
        return run

    def kubectl(self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl 1.33 against the cluster (as admin: the kubeconfig the install fetched)."""
        done = subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args],
                              capture_output=True,
                              text=True, input=input, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def ready_nodes(self) -> dict[str, bool]:
        """Node name -> Ready, as the API says."""
        out = {}
        for node in self.kubectl_json("get", "nodes")["items"]:
            conditions = node.get("status", {}).get("conditions") or []
            out[node["metadata"]["name"]] = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return out

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ready = self.ready_nodes()
            if all(ready.get(n.node) for n in self.members):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes not Ready after {timeout:.0f} s: {ready}")
            time.sleep(1)

    def service(self, node: LabNode, action: hostlayout.ServiceAction) -> subprocess.CompletedProcess[str]:
        """start/stop/status of the host's dvp service (dvp-server on the master, dvp-agent on a worker)."""
        name: hostlayout.ServiceName = "dvp-server" if node.role == "master" else "dvp-agent"
        return node.sh(hostlayout.service_command(name, action), check=False)

    def log(self, node: LabNode) -> str:
        name: hostlayout.ServiceName = "dvp-server" if node.role == "master" else "dvp-agent"
        path = node.path(hostlayout.service_paths(name).log_file)
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.lab.close()


def start_cluster(dvp: Path, work: Path, *, workers: int = 2) -> Cluster:
    """Lab hosts for one master and `workers` workers, the platform installed onto all of them
    through `dvp install --config`; raises (the lab closed) if the install fails."""
    lab = UpgradeLab(workers=workers, fresh=True)
    cluster = Cluster(lab, dvp, work)
    try:
        work.mkdir(parents=True, exist_ok=True)
        run = cluster.install()
        if not run.ok:
            raise RuntimeError(f"installing the {1 + workers}-host lab cluster failed: {run.describe()}")
        cluster.wait_ready()
    except BaseException:
        cluster.close()
        raise
    return cluster


@pytest.fixture(scope="session")
def cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One master and two workers on lab hosts, installed once per test session with the built
    `dist/dvp install --config`. Tests share it: leave it as you found it (delete your objects;
    a test that adds or removes hosts restores the three)."""
    if os.geteuid() != 0:
        pytest.fail("the lab cluster needs root (network, PID and mount namespaces, sshd, libvirtd)")
    cluster = start_cluster(built_dvp(), tmp_path_factory.mktemp("cluster3"), workers=2)
    try:
        yield cluster
    finally:
        cluster.close()
