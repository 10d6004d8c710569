"""`dvp server` supervises one process per component: SIGKILL of any one of them (API server,
DVCR, controllers) while a client keeps writing, and the component comes back under a new pid,
`/readyz?verbose` shows it failing and then ready, every write the API acknowledged is still
there, and the restarted component does its job again. (The node handler's case, with a
running VM, is in tests/integration/nodehandler/test_embedded.py.)"""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import polling
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("supervised") / "data")
    try:
        srv.start(timeout=120)
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


eventually = functools.partial(polling.eventually, timeout=60, interval=0.05)


class Writer(threading.Thread):
    """Creates ConfigMaps one after another and remembers which ones the API acknowledged."""

    def __init__(self, server: ApiServerProcess, prefix: str) -> None:
        super().__init__(daemon=True)
        self.server, self.prefix = server, prefix
        self.acknowledged: list[str] = []
        self.refused = 0
        self.done = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.done.is_set():
            name = f"{self.prefix}-{i}"
            i += 1
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                               "data": {"n": str(i)}}).encode()
            try:
                code, _ = self.server.raw("POST", "/api/v1/namespaces/default/configmaps", body,
                                          headers={"Content-Type": "application/json"}, timeout=5)
            except OSError:
                code = 0
                time.sleep(0.05)
            if code == 201:
                self.acknowledged.append(name)
            else:
                self.refused += 1


def _stored_configmaps(server: ApiServerProcess) -> set[str]:
    code, body = server.raw("GET", "/api/v1/namespaces/default/configmaps")
    assert code == 200, body
    return {item["metadata"]["name"] for item in json.loads(body)["items"]}


@pytest.mark.parametrize("component", ["apiserver", "dvcr", "controllers"])
def test_sigkill_of_a_component_restarts_it_and_keeps_every_acknowledged_write(
        server: ApiServerProcess, component: str) -> None:
    before = server.components()[component]
    assert before["state"] == "ready" and before["pid"] > 0
    writer = Writer(server, f"w-{component}")
    writer.start()
    eventually(lambda: len(writer.acknowledged) >= 5, what="first acknowledged writes")

    os.kill(before["pid"], signal.SIGKILL)
    if component == "apiserver":
        # nothing answers /readyz while the API server is down; the supervisor's view says why
        eventually(lambda: server.components()[component]["state"] != "ready", what="the supervisor noticing")
    else:
        text = eventually(lambda: (lambda r: r[1] if f"[-]{component}" in r[1] else "")(server.readyz()),
                          what=f"/readyz?verbose reporting {component} down")
        assert "readyz check failed" in text
    text = server.wait_ready(timeout=120)
    assert f"[+]{component} ok" in text and "readyz check passed" in text
    after = server.components()[component]
    assert after["pid"] not in (0, before["pid"]) and after["restarts"] == before["restarts"] + 1

    acknowledged = len(writer.acknowledged)
    eventually(lambda: len(writer.acknowledged) >= acknowledged + 5, what="writes acknowledged after the restart")
    writer.done.set()
    writer.join(timeout=30)
    lost = set(writer.acknowledged) - _stored_configmaps(server)
    assert not lost, f"acknowledged writes lost: {sorted(lost)[:10]}"
    assert server.proc is not None and server.proc.poll() is None, "dvp server itself kept running"


def _allocated(server: ApiServerProcess, name: str) -> str:
    """Create a VirtualMachineIPAddress and wait for the IPAM controller to give it an address."""
    server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineIPAddress",
        "metadata": {"name": name, "namespace": "default"}, "spec": {"type": "Auto"}}))

    def address() -> str:
        out = server.kubectl("get", "vmip", name, "-o", "json", check=False)
        return str(json.loads(out.stdout).get("status", {}).get("address", "")) if out.returncode == 0 else ""

    return str(eventually(address, timeout=90, what=f"an address for VirtualMachineIPAddress {name}"))


def test_restarted_controllers_reconcile_new_objects(server: ApiServerProcess) -> None:
    """After their SIGKILL (previous test) the controllers lead again and allocate."""
    assert _allocated(server, "after-restart").startswith("10.66.")


def test_controllers_carry_on_across_an_api_server_restart(server: ApiServerProcess) -> None:
    """The controllers' connections over the API server's Unix socket break with it, and come
    back by themselves: the controllers process is not restarted, and still reconciles."""
    controllers = server.components()["controllers"]["pid"]
    os.kill(server.components()["apiserver"]["pid"], signal.SIGKILL)
    eventually(lambda: server.components()["apiserver"]["state"] != "ready", what="the supervisor noticing")
    server.wait_ready(timeout=120)
    assert _allocated(server, "after-api-restart").startswith("10.66.")
    assert server.components()["controllers"]["pid"] == controllers


def test_readyz_names_each_check_and_sigterm_stops_in_reverse_order(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(60)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))  # as systemd sets it for Type=notify
    srv = ApiServerProcess(tmp_path / "data", extra_args=["--no-controllers"])
    srv.start(timeout=120)
    text = srv.wait_ready()
    assert notify.recv(4096).startswith(b"READY=1"), "systemd is told once every component serves"
    assert text.splitlines() == ["[+]ping ok", "[+]log ok", "[+]etcd ok", "[+]apiserver ok", "[+]dvcr ok",
                                 "readyz check passed"]
    code, body = srv.raw("GET", "/readyz/dvcr")
    assert (code, body) == (200, b"ok")
    assert srv.raw("GET", "/readyz/nothing")[0] == 404
    pids = {name: c["pid"] for name, c in srv.components().items()}
    srv.stop()
    log = srv.log_path.read_text()
    assert log.index("stopping DVCR") < log.index("stopping API server")
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert {c["state"] for c in srv.components().values()} == {"stopped"}
    assert notify.recv(4096) == b"STOPPING=1"
    notify.close()


def test_the_api_socket_is_the_owners_only_and_still_needs_a_token(server: ApiServerProcess) -> None:
    """The controllers reach the API server over DATA_DIR/apiserver.sock (no TLS on one host):
    mode 0600, and the same bearer-token authentication as the HTTPS port."""
    from controlplane.common.kube.client import NAMESPACES, KubeClient, KubeError
    from controlplane.common.kube.local import LocalTransport

    path = server.data_dir / "apiserver.sock"
    assert path.is_socket() and path.stat().st_mode & 0o777 == 0o600
    status, _ = LocalTransport(path, "not-a-token", user_agent="test").call(
        "GET", "/api/v1/namespaces", [], None, "application/json", 10)
    assert status == 401
    kube = KubeClient.from_kubeconfig(server.kubeconfig, local_socket=path)
    assert kube.local is not None
    assert kube.get(NAMESPACES, "default")["metadata"]["name"] == "default"
    with pytest.raises(KubeError) as err:
        kube.get(NAMESPACES, "no-such-namespace")
    assert err.value.not_found
    events = kube.watch(NAMESPACES, resource_version="0", timeout_seconds=1)
    assert any(e["object"]["metadata"]["name"] == "default" for e in events)


def test_every_component_claims_the_cpu_from_busy_guests(server: ApiServerProcess) -> None:
    """Each component is a session of its own (its own CPU group where the kernel groups by
    session): each one runs at the server's --cpu-nice, as a process and as a group, so guests
    that keep every core busy do not starve it."""
    from controlplane.common.cpu_share import DEFAULT_NICE

    for name, component in server.components().items():
        pid = component["pid"]
        assert os.getpriority(os.PRIO_PROCESS, pid) == DEFAULT_NICE, name
        group = Path(f"/proc/{pid}/autogroup")
        if group.exists():  # kernels built without autogroup have no such file, and no such groups
            assert group.read_text().split()[-1] == str(DEFAULT_NICE), (name, group.read_text())
