"""`dvp server` whose libvirtd is down at start: the API, DVCR and the controllers serve, the
node handler registers its Node NotReady (LibvirtUnavailable, saying what to do), and when
libvirt answers later the node becomes Ready by itself.

The machine's libvirtd is shared by concurrent test runs and cannot be stopped here, so the
node handler is given a libvirt socket of its own (`qemu+unix:///system?socket=...`) where
nothing listens at first; "starting libvirtd" is then making the real libvirtd answer on that
socket (a byte-for-byte Unix socket relay to /run/libvirt/libvirt-sock)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
import requests

from controlplane.common.kube.client import NODES, KubeClient
from tests.integration.nodehandler.support import wait_for
from tests.services.apiserver import ApiServerProcess
from tests.services.libvirtd import DAEMON_SOCKETS, LibvirtService, domain_name_for
from tests.services.nodeagent import allocate_network, release_network, remove_domains, write_agent_config

pytestmark = pytest.mark.integration


class UnixRelay:
    """Serves `listen` by relaying every connection to the socket at `target`."""

    def __init__(self, listen: Path, target: Path) -> None:
        self.listen, self.target = listen, target
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def start(self) -> None:
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.listen))
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(self.target))
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self.listen.unlink(missing_ok=True)


def ready_condition(kube: KubeClient, node: str) -> dict[str, Any] | None:
    found = kube.get_or_none(NODES, node)
    conds = ((found or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "Ready"), None)


def processes_naming(path: Path) -> list[int]:
    """PIDs whose command line names `path` (a server's components name its data dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if str(path).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
    return found


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dvp-lv-", dir="/tmp"))  # short: Unix socket paths are limited
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_server_runs_with_libvirt_down_and_the_node_recovers(
        tmp_path: Path, sock_dir: Path, libvirt_service: LibvirtService, libvirt_conn: libvirt.virConnect,
        kubectl_path: Path) -> None:
    sock = sock_dir / "libvirt-sock"
    state = tmp_path / "agent-state"
    network = allocate_network(state)
    node = f"nolv-{network.bridge[-6:]}"
    config = write_agent_config(tmp_path / "agent.yaml", node, state, network, "l",
                                libvirt_uri=f"qemu+unix:///system?socket={sock}")
    server = ApiServerProcess(tmp_path / "data", agent=True, extra_args=["--agent-config", str(config)])
    relay = UnixRelay(sock, DAEMON_SOCKETS["libvirtd"])
    try:
        server.start()
        def running_without_libvirt() -> bool:
            assert server.proc is not None
            if server.proc.poll() is not None:
                pytest.fail(f"dvp server exited without libvirt:\n{server.log_path.read_text()[-3000:]}")
            return "NotReady until libvirt answers" in server.log_path.read_text(errors="replace")

        wait_for(running_without_libvirt, timeout=60, what="the node handler running without libvirt")
        assert server.proc is not None and server.proc.poll() is None, "dvp server must not exit"
        # the API, DVCR and the controllers serve (each a process of dvp server's, in /readyz)
        ready = server.wait_ready(timeout=120)
        assert "[+]controllers ok" in ready and "[+]dvcr ok" in ready, ready
        assert server.raw("POST", "/api/v1/namespaces/default/configmaps",
                          json.dumps({"metadata": {"name": "still-here"}}).encode(),
                          headers={"Content-Type": "application/json"})[0] == 201
        info = json.loads(server.dvcr_info.read_text())
        s = requests.Session()
        s.trust_env = False
        assert s.get(f"{info['url']}/healthz", verify=info["ca"], timeout=10).status_code == 200
        # the node says why it is not ready, and what to do
        kube = KubeClient.from_kubeconfig(server.kubeconfig)
        wait_for(lambda: ready_condition(kube, node) is not None, timeout=30, what="the Node registered")
        cond = ready_condition(kube, node)
        assert cond is not None and cond["status"] == "False" and cond["reason"] == "LibvirtUnavailable", cond
        assert str(sock) in cond["message"] and "start libvirtd" in cond["message"]
        # libvirt comes back: the node recovers by itself
        relay.start()
        wait_for(lambda: (ready_condition(kube, node) or {}).get("status") == "True", timeout=90,
                 what="the Node Ready once libvirt answers")
        cond = ready_condition(kube, node)
        assert cond is not None and cond["reason"] == "NodeHandlerReady"
        assert "libvirt is back" in server.log_path.read_text(errors="replace")
        assert server.proc.poll() is None
        assert server.raw("GET", "/api/v1/namespaces/default/configmaps/still-here")[0] == 200
        # the supervisor dies while its node handler's libvirt goes away: every component follows it
        server.kill()
        relay.stop()
        wait_for(lambda: not processes_naming(tmp_path / "data"), timeout=30,
                 what="no process of the killed dvp server left")
    finally:
        server.kill()
        relay.stop()
        time.sleep(0.2)
        remove_domains(libvirt_conn, domain_name_for(""), node)
        release_network(network)
