"""`dvp server` runs the node handler in-process for a one-host install: the agent has its own
identity issued by the API server (group system:nodes), registers its Node, runs a VM, and
after a restart of the whole server adopts the still-running VM."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from controlplane.common.kube.client import NODES, KubeClient
from controlplane.common.kubeconfig import read_kubeconfig
from controlplane.nodehandler.context import INSTANCES
from nodeimage.guest import GuestImage
from tests.integration.nodehandler.support import NodeEnv, instance, wait_for
from tests.services.apiserver import ApiServerProcess
from tests.services.libvirtd import LibvirtService, domain_name_for
from tests.services.nodeagent import (
    allocate_network,
    record_dnsmasq,
    release_network,
    remove_domains,
    write_agent_config,
)

pytestmark = pytest.mark.integration
READY = re.compile(r"dvp agent: node (\S+) ready; consoles on \S+:(\d+)")


def _ready_count(server: ApiServerProcess) -> int:
    return len(READY.findall(server.log_path.read_text(errors="replace")))


@pytest.fixture
def server(tmp_path: Path, libvirt_service: LibvirtService, libvirt_conn: libvirt.virConnect,
           kubectl_path: Path) -> Iterator[ApiServerProcess]:
    state = tmp_path / "agent-state"
    network = allocate_network(state)
    node = f"one-host-{network.bridge[-6:]}"
    config = write_agent_config(tmp_path / "agent.yaml", node, state, network, "e")
    srv = ApiServerProcess(tmp_path / "data", agent=True, extra_args=["--agent-config", str(config)])
    srv.node = node  # type: ignore[attr-defined]
    srv.state = state  # type: ignore[attr-defined]
    try:
        srv.start()
        wait_for(lambda: _ready_count(srv) >= 1, timeout=60, what="the in-process agent ready")
        record_dnsmasq(network)
        yield srv
    finally:
        srv.kill()
        remove_domains(libvirt_conn, domain_name_for(""), node)
        release_network(network)


def test_server_runs_the_agent_with_a_node_identity(server: ApiServerProcess, guest_image: GuestImage,
                                                    libvirt_conn: libvirt.virConnect) -> None:
    node: str = server.node  # type: ignore[attr-defined]
    kube = KubeClient.from_kubeconfig(server.kubeconfig)
    status = kube.get(NODES, node)["status"]
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    # ClockSynchronized comes from the node lifecycle controller once it has seen a renewal live
    assert conds.pop("ClockSynchronized", "True") == "True"
    assert conds == {"Ready": "True", "KVM": "False", "DVCRAccess": "True"}

    token = read_kubeconfig(server.data_dir / "agent" / "kubeconfig")["token"]
    code, body = server.raw("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                            json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                        "spec": {"token": token}}).encode(),
                            headers={"Content-Type": "application/json"})
    user = json.loads(body)["status"]["user"]
    assert code == 201 and user == {"username": f"system:node:{node}", "groups": ["system:nodes"]}

    env = NodeEnv(kube=kube, agent=None, image=guest_image.qcow2, node_name=node)  # type: ignore[arg-type]
    vol = env.boot_volume("one-root")
    kube.create(INSTANCES, instance("vm-one", node, disks=[{"name": "root", "volume": {"name": "one-root"}}]))
    st = env.wait_phase("vm-one", "Running", timeout=30)
    uid = st["metadata"]["uid"]
    serial = Path(server.state) / "instances" / uid / "serial.log"  # type: ignore[attr-defined]
    wait_for(lambda: "DVP-GUEST-READY hostname=vm-one" in serial.read_text(errors="replace"), timeout=90,
             what="vm-one's marker")
    assert Path(vol["status"]["path"]).is_relative_to(server.state)  # type: ignore[attr-defined]
    dom_id = libvirt_conn.lookupByUUIDString(uid).ID()

    # the whole server restarts: the VM keeps running and is adopted, with the same identity reused
    server.stop()
    assert libvirt_conn.lookupByUUIDString(uid).isActive()
    before = _ready_count(server)
    server.start()
    wait_for(lambda: _ready_count(server) > before, timeout=60, what="the agent ready again")
    assert libvirt_conn.lookupByUUIDString(uid).ID() == dom_id
    assert read_kubeconfig(server.data_dir / "agent" / "kubeconfig")["token"] == token
    time.sleep(0.5)
    assert KubeClient.from_kubeconfig(server.kubeconfig).get(INSTANCES, "vm-one", "default")["status"]["phase"] == \
        "Running"


def test_sigkill_of_the_node_handler_process_leaves_the_vm_running_once(
        server: ApiServerProcess, guest_image: GuestImage, libvirt_conn: libvirt.virConnect) -> None:
    """The supervisor restarts the node handler it runs; the VM it started keeps running as the
    same domain (adopted, not started again), and /readyz?verbose shows it come back."""
    import os
    import signal

    node: str = server.node  # type: ignore[attr-defined]
    kube = KubeClient.from_kubeconfig(server.kubeconfig)
    env = NodeEnv(kube=kube, agent=None, image=guest_image.qcow2, node_name=node)  # type: ignore[arg-type]
    env.boot_volume("kill-root")
    kube.create(INSTANCES, instance("vm-kill", node, disks=[{"name": "root", "volume": {"name": "kill-root"}}]))
    uid = env.wait_phase("vm-kill", "Running", timeout=60)["metadata"]["uid"]
    dom_id = libvirt_conn.lookupByUUIDString(uid).ID()
    assert "[+]node-handler ok" in server.wait_ready()
    before = server.components()["node-handler"]

    os.kill(before["pid"], signal.SIGKILL)
    wait_for(lambda: "[-]node-handler" in server.readyz()[1], timeout=30, what="/readyz reporting it down")
    assert "[+]node-handler ok" in server.wait_ready(timeout=120)
    after = server.components()["node-handler"]
    assert after["pid"] != before["pid"] and after["restarts"] == before["restarts"] + 1
    assert libvirt_conn.lookupByUUIDString(uid).ID() == dom_id, "the VM kept running as the same domain"
    ours = [d for d in libvirt_conn.listAllDomains() if d.UUIDString() == uid or "vm-kill" in d.name()]
    assert len(ours) == 1, f"one domain for the VM, found {[d.name() for d in ours]}"
    time.sleep(0.5)
    assert kube.get(INSTANCES, "vm-kill", "default")["status"]["phase"] == "Running"
