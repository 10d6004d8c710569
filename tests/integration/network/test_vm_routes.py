"""Cross-host VM network through VXLAN on real lab hosts (docs/network.md): a master running
`dvp server` and two workers running `dvp agent` (this tree, `vm-route-mode: vxlan`), each with
its own libvirtd, on one LAN; real QEMU guests (the test image answers HTTP). A VM on worker A
answers from worker B, from the master and from a VM on worker B; stopped, its route is gone from every host; started on another node
with the same address, every host routes it there; its node lost (agent killed, Node not
Ready), its VMs' routes are withdrawn everywhere and come back with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from controlplane.api.internal import NODE_LABEL
from controlplane.common.kube.client import NAMESPACES
from controlplane.nodehandler.context import INSTANCES
from nodeimage.guest import ensure_image
from tests.support.routelab import RouteLab, instance, peer_fetch_script, wait_http, wait_routed
from tests.support.upgradelab import LabNode

NS = "net"
WEB_IP, CLIENT_IP = "10.66.0.10", "10.66.0.11"
T = TypeVar("T")

CLIENT_SCRIPT = peer_fetch_script(WEB_IP)


def wait(fn: Callable[[], T], *, what: str, timeout: float = 240, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)


def routed(lab: RouteLab, n: LabNode, ip: str, via: str | None, *, timeout: float) -> None:
    wait_routed(n, ip, via, timeout=timeout, log=lab.log(n)[-2000:])


def fetched(lab: RouteLab, n: LabNode, url: str, *, what: str, timeout: float) -> str:
    return wait_http(n, url, what=what, timeout=timeout)


@pytest.fixture(scope="module")
def lab() -> Iterator[RouteLab]:
    """The hosts are neighbours, `vxlan` forces the tunnel (direct routes: the shared installed
    cluster's test, tests/integration/multihost/test_vm_network.py)."""
    image = ensure_image("cloud")
    lab = RouteLab(workers=2, route_mode="vxlan")
    try:
        kube = lab.kube()
        kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        a, b = lab.nodes[1], lab.nodes[2]
        kube.create(INSTANCES, instance("web", a.node, WEB_IP, "52:54:00:7e:00:10", str(image.qcow2), namespace=NS))
        kube.create(INSTANCES, instance("client", b.node, CLIENT_IP, "52:54:00:7e:00:11", str(image.qcow2),
                                        user_data=CLIENT_SCRIPT, namespace=NS))
        yield lab
    finally:
        lab.close()


def _set(lab: RouteLab, name: str, **spec: Any) -> None:
    patch: dict[str, Any] = {"spec": spec}
    if "nodeName" in spec:
        patch["metadata"] = {"labels": {NODE_LABEL: spec["nodeName"]}}
    lab.kube().patch(INSTANCES, name, patch, NS)


def test_vm_answers_from_other_hosts_and_from_a_vm_on_another_host(lab: RouteLab) -> None:
    master, a, b = lab.nodes
    for n in (master, b):
        routed(lab, n, WEB_IP, a.host.address, timeout=240)
    for n in (master, a):
        routed(lab, n, CLIENT_IP, b.host.address, timeout=240)
    assert WEB_IP not in lab.routes(a) and CLIENT_IP not in lab.routes(b)  # own VMs: the bridge delivers them
    dev = "dvpvx0" if lab.route_mode == "vxlan" else "eth0"
    assert f"{WEB_IP} via {a.host.address} dev {dev}" in master.sh("ip -4 route show table 166").stdout
    marker = fetched(lab, b, f"http://{WEB_IP}/", what=f"the VM on {a.name}", timeout=300)
    assert f"ip={WEB_IP}" in marker, marker
    assert lab.http(master, f"http://{WEB_IP}/") == marker
    # the client VM on b fetches the web VM on a every second and serves what it got
    peer = fetched(lab, master, f"http://{CLIENT_IP}/peer.html", what=f"the VM on {b.name} reaching the VM on {a.name}",
                   timeout=300)
    assert peer == marker


def test_stopped_vm_leaves_no_route_anywhere(lab: RouteLab) -> None:
    master, a, b = lab.nodes
    _set(lab, "web", runState="Stopped")
    for n in lab.nodes:
        routed(lab, n, WEB_IP, None, timeout=60)
    assert lab.http(master, f"http://{WEB_IP}/", timeout=2) is None
    assert lab.routes(master).get(CLIENT_IP) == b.host.address  # the other VM's route is untouched
    wait(lambda: lab.http(master, f"http://{CLIENT_IP}/peer.html") is None, what="the client VM losing its peer",
         timeout=60)


def test_vm_started_on_another_node_keeps_its_address_and_routes_follow(lab: RouteLab) -> None:
    master, a, b = lab.nodes
    _set(lab, "web", nodeName=master.node, runState="Running")
    for n in (a, b):
        routed(lab, n, WEB_IP, master.host.address, timeout=120)
    routed(lab, master, WEB_IP, None, timeout=60)  # it runs there now: the bridge delivers it
    marker = fetched(lab, b, f"http://{WEB_IP}/", what="the VM started again on the master", timeout=300)
    assert f"ip={WEB_IP}" in marker  # the master's dnsmasq gave it the same address
    assert lab.http(a, f"http://{WEB_IP}/") == marker
    fetched(lab, master, f"http://{CLIENT_IP}/peer.html", what="the client VM reaching it again", timeout=120)


def test_lost_node_has_its_routes_withdrawn_and_back_when_it_returns(lab: RouteLab) -> None:
    master, a, b = lab.nodes
    routed(lab, master, CLIENT_IP, b.host.address, timeout=60)
    lab.stop_agent(b)
    lab.set_ready(b, "Unknown")  # what the node lifecycle writes once b's Lease lapsed
    for n in (master, a):
        routed(lab, n, CLIENT_IP, None, timeout=60)
    lab.start_agent(b)  # back: it registers Ready again and re-adopts its domain
    for n in (master, a):
        routed(lab, n, CLIENT_IP, b.host.address, timeout=120)
    assert f"ip={CLIENT_IP}" in fetched(lab, master, f"http://{CLIENT_IP}/", what="the VM on the returned node",
                                        timeout=60)
