"""`dvp agent` as a real subprocess for tests and `bench/vmstart`, against a real `dvp server`
and the shared test libvirtd, with a VM network of its own.

Each `NodeAgentProcess` gets: a node identity issued by the API server (user
`system:node:<name>`, group `system:nodes`, written to tokens.json the way the server's own
`issue_token` does, picked up by the running server within a second), a bridge `dvpt<hex>` on a
free /24 (chosen under the same lock and recorded in the same place as `tests/services/network.py`,
so a run killed with -9 has its bridge and dnsmasq reaped by the next run), libvirt domain
names `dvpt-<pytest pid>-...` (reaped by `tests/services/libvirtd.py` when this pytest is gone),
and its own state and run directories. It can be killed (-9) and started again, as the
adoption tests need; `teardown()` removes its domains, bridge and dnsmasq.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import libvirt
import yaml

from controlplane.apiserver.auth import TokenAuthenticator
from controlplane.common.kubeconfig import write_kubeconfig
from controlplane.nodehandler.network import NodeNetwork
from tests.services.apiserver import REPO, ApiServerProcess
from tests.services.libvirtd import domain_name_for
from tests.services.network import BRIDGE_PREFIX, NET_DIR, _free_subnet, _reap_stale
from tests.services.processes import RUN_DIR, ProcessId, locked, write_json

READY = re.compile(r"dvp agent: node (\S+) ready; consoles on (\S+):(\d+)")


def node_kubeconfig(server: ApiServerProcess, node: str, path: Path) -> Path:
    """A kubeconfig with a fresh `system:nodes` token for `node` (returns once the server accepts it:
    it rereads tokens.json at most once a second)."""
    token = TokenAuthenticator(server.data_dir / "tokens.json").issue(f"system:node:{node}", ["system:nodes"])
    deadline = time.monotonic() + 10
    while server.raw("GET", "/version", token=token)[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API server did not accept the token issued for node {node}")
        time.sleep(0.1)
    return write_kubeconfig(path, server=server.url, ca_pem=server.ca_file.read_bytes(), token=token,
                            user=f"system:node:{node}")


def allocate_network(state_dir: Path) -> NodeNetwork:
    """A bridge name and a free /24 for an agent's VM network, recorded for reaping."""
    me = ProcessId.of(os.getpid())
    assert me is not None
    with locked(RUN_DIR / "net.lock"):
        NET_DIR.mkdir(parents=True, exist_ok=True)
        _reap_stale()
        subnet = _free_subnet()
        bridge = f"{BRIDGE_PREFIX}{random.randrange(16**6):06x}"
        write_json(NET_DIR / f"{bridge}.json", {"owner": me.to_json(), "subnet": str(subnet)})
    return NodeNetwork(bridge=bridge, subnet=subnet, state_dir=state_dir / "network" / bridge)


def write_agent_config(path: Path, node: str, state: Path, network: NodeNetwork, run_tag: str,
                       **extra: str) -> Path:
    """The `--agent-config` file of `dvp server`'s in-process node handler, on `network`, with
    its run dir tagged `run_tag`; `extra` adds keys (underscores written as dashes)."""
    path.write_text(yaml.safe_dump({
        "node-name": node, "state-dir": str(state), "run-dir": str(RUN_DIR / f"{run_tag}-{network.bridge[-6:]}"),
        "domain-prefix": domain_name_for(""), "bridge": network.bridge, "vm-cidr": str(network.subnet),
        "node-ip": "127.0.0.1", "console-listen": "127.0.0.1:0",
        **{k.replace("_", "-"): v for k, v in extra.items()},
    }))
    return path


def record_dnsmasq(network: NodeNetwork) -> None:
    """Add the agent's dnsmasq to the record, so a killed test run's dnsmasq is stopped too."""
    pid = network.dnsmasq_pid()
    me = ProcessId.of(os.getpid())
    dnsmasq = ProcessId.of(pid) if pid else None
    if me is not None and dnsmasq is not None:
        write_json(NET_DIR / f"{network.bridge}.json", {"owner": me.to_json(), "subnet": str(network.subnet),
                                                        "dnsmasq": dnsmasq.to_json()})


def release_network(network: NodeNetwork) -> None:
    network.teardown()
    (NET_DIR / f"{network.bridge}.json").unlink(missing_ok=True)


def remove_domains(conn: libvirt.virConnect, prefix: str, node: str) -> None:
    for dom in conn.listAllDomains():
        try:  # a transient domain may vanish between the listing and reading it: nothing left to remove
            if not dom.name().startswith(prefix) or f"<dvp:node>{node}</dvp:node>" not in dom.XMLDesc(0):
                continue
        except libvirt.libvirtError:
            continue
        try:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError:
            pass


class NodeAgentProcess:
    def __init__(self, server: ApiServerProcess, workdir: Path, *, node: str | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.server = server
        self.workdir = workdir
        self.node = node or f"node-{random.randrange(16**6):06x}"
        self.state_dir = workdir / "state"
        self.run_dir = RUN_DIR / f"a-{random.randrange(16**6):06x}"
        self.log_path = workdir / "agent.log"
        self.extra_args = extra_args or []
        self.domain_prefix = domain_name_for("")
        self.proc: subprocess.Popen[bytes] | None = None
        self.console_port = 0
        workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = node_kubeconfig(server, self.node, workdir / "kubeconfig")
        self.network = allocate_network(self.state_dir)
        self.bridge, self.subnet = self.network.bridge, self.network.subnet

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def guest_ip(self, index: int) -> str:
        return str(self.subnet.network_address + 10 + index)

    def args(self) -> list[str]:
        return [
            "--kubeconfig", str(self.kubeconfig), "--node-name", self.node, "--state-dir", str(self.state_dir),
            "--run-dir", str(self.run_dir), "--domain-prefix", self.domain_prefix, "--bridge", self.bridge,
            "--vm-cidr", str(self.subnet), "--node-ip", "127.0.0.1", "--console-listen", "127.0.0.1:0",
            "--pki-dir", str(self.server.data_dir / "pki"), "--log-level", "debug", *self.extra_args,
        ]

    def start(self, timeout: float = 60.0) -> None:
        before = self.log_path.read_text().count("dvp agent: node") if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            log.write(f"--- start {time.ctime()}\n".encode())
            self.proc = subprocess.Popen([sys.executable, "-m", "installer.cli.main", "agent", *self.args()],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            found = READY.findall(text)
            if len(found) > before:
                self.console_port = int(found[-1][2])
                self._record_dnsmasq()
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"dvp agent did not become ready; log:\n{self.log_path.read_text()[-5000:]}")

    def _record_dnsmasq(self) -> None:
        record_dnsmasq(self.network)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def domains(self, conn: libvirt.virConnect) -> list[libvirt.virDomain]:
        return [d for d in conn.listAllDomains() if d.name().startswith(self.domain_prefix)
                and f"<dvp:node>{self.node}</dvp:node>" in d.XMLDesc(0)]

    def teardown(self, conn: libvirt.virConnect) -> None:
        """Stop the agent, remove its domains, its bridge and its dnsmasq."""
        self.stop()
        remove_domains(conn, self.domain_prefix, self.node)
        release_network(self.network)

    def serial_log(self, uid: str) -> Path:
        return self.state_dir / "instances" / uid / "serial.log"

    def info(self) -> dict[str, Any]:
        return {"node": self.node, "bridge": self.bridge, "subnet": str(self.subnet), "port": self.console_port}
