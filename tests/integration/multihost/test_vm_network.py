"""The cross-host VM network on the shared installed cluster (`cluster3`: `dist/dvp install` onto a
master and two workers on lab hosts with their own libvirtd, one LAN; docs/network.md): real QEMU
guests (the test image answers HTTP) keep their address wherever they run, answer from every
host and from VMs on other hosts, and leave no route behind when stopped.

The VMs here are instances placed directly on chosen nodes (what the VM controller writes), so
each test knows where its VM runs. Everything is deleted at the end (the cluster is shared).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.api.internal import NODE_LABEL
from controlplane.common.kube.client import NAMESPACES, KubeClient
from controlplane.nodehandler.context import INSTANCES
from controlplane.nodehandler.network import gateway_mac
from nodeimage.guest import ensure_image
from tests.support.clusterlab import Cluster
from tests.support.routelab import instance, peer_fetch_script, vm_routes, wait_http, wait_routed

NS = "w14-vmnet"
WEB_IP, CLIENT_IP = "10.66.7.10", "10.66.7.11"


@pytest.fixture(scope="module")
def vms(cluster3: Cluster) -> Iterator[KubeClient]:
    """A web VM on the first worker, a client VM (fetching the web VM every second) on the second."""
    image = str(ensure_image("cloud").qcow2)
    kube = KubeClient.from_kubeconfig(cluster3.kubeconfig)
    a, b = cluster3.workers[:2]
    if kube.get_or_none(NAMESPACES, NS) is None:
        kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube.create(INSTANCES, instance("web", a.node, WEB_IP, "52:54:00:7e:07:10", image, namespace=NS))
    kube.create(INSTANCES, instance("client", b.node, CLIENT_IP, "52:54:00:7e:07:11", image, namespace=NS,
                                    user_data=peer_fetch_script(WEB_IP)))
    try:
        yield kube
    finally:
        for name in ("web", "client"):
            kube.delete_if_exists(INSTANCES, name, NS)
        for n in cluster3.nodes:  # nothing of ours left on any host
            for ip in (WEB_IP, CLIENT_IP):
                wait_routed(n, ip, None, timeout=120)


def _set(kube: KubeClient, name: str, **spec: Any) -> None:
    patch: dict[str, Any] = {"spec": spec}
    if "nodeName" in spec:
        patch["metadata"] = {"labels": {NODE_LABEL: spec["nodeName"]}}
    kube.patch(INSTANCES, name, patch, NS)


def test_vm_answers_from_every_host_and_from_a_vm_on_another_host(cluster3: Cluster, vms: KubeClient) -> None:
    master, (a, b) = cluster3.master, cluster3.workers[:2]
    for n in (master, b):
        wait_routed(n, WEB_IP, a.host.address, timeout=240, log=cluster3.log(n)[-2000:])
    for n in (master, a):
        wait_routed(n, CLIENT_IP, b.host.address, timeout=240, log=cluster3.log(n)[-2000:])
    assert WEB_IP not in vm_routes(a) and CLIENT_IP not in vm_routes(b)  # own VMs: the bridge delivers them
    # every host's bridge is the VMs' gateway with one MAC: a guest's ARP entry for it holds on any host
    macs = {n.name: n.sh("cat /sys/class/net/dvpbr0/address").stdout.strip() for n in cluster3.nodes}
    assert set(macs.values()) == {gateway_mac("10.66.0.1")}, macs
    # neighbours on one LAN: routed directly, no tunnel
    assert f"{WEB_IP} via {a.host.address} dev eth0" in master.sh("ip -4 route show table 166").stdout
    marker = wait_http(b, f"http://{WEB_IP}/", what=f"the VM on {a.name}", timeout=300)
    assert f"ip={WEB_IP}" in marker, marker
    assert wait_http(master, f"http://{WEB_IP}/", what="the VM from the master", timeout=30) == marker
    peer = wait_http(master, f"http://{CLIENT_IP}/peer.html", what=f"the VM on {b.name} reaching the VM on {a.name}",
                     timeout=300)
    assert peer == marker


def test_stopped_vm_leaves_no_route_on_any_host(cluster3: Cluster, vms: KubeClient) -> None:
    master, b = cluster3.master, cluster3.workers[1]
    _set(vms, "web", runState="Stopped")
    for n in cluster3.nodes:
        wait_routed(n, WEB_IP, None, timeout=90)
    assert vm_routes(master).get(CLIENT_IP) == b.host.address  # the other VM's route is untouched
    assert wait_http(master, f"http://{CLIENT_IP}/", what="the client VM", timeout=30)


def test_vm_started_on_another_node_keeps_its_address_and_routes_follow(cluster3: Cluster, vms: KubeClient) -> None:
    master, (a, b) = cluster3.master, cluster3.workers[:2]
    _set(vms, "web", nodeName=master.node, runState="Running")
    for n in (a, b):
        wait_routed(n, WEB_IP, master.host.address, timeout=180)
    wait_routed(master, WEB_IP, None, timeout=60)  # it runs there now: the bridge delivers it
    marker = wait_http(b, f"http://{WEB_IP}/", what="the VM started again on the master", timeout=300)
    assert f"ip={WEB_IP}" in marker  # the master's dnsmasq gave it the same address
    assert wait_http(a, f"http://{WEB_IP}/", what="the VM on the master from worker A", timeout=30) == marker
    wait_http(master, f"http://{CLIENT_IP}/peer.html", what="the client VM reaching it again", timeout=120)
