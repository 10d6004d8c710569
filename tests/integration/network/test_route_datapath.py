"""The VM routes' data path in the kernel, without QEMU: two hosts (network namespaces) in
different subnets joined by a router namespace, each with its VM bridge and one "VM" (a
namespace on the bridge, serving HTTP). The route reconciler runs in each host with the real
`KernelIp` and `KernelTunnel`, exactly as the node handler does; `auto` mode must take the
VXLAN tunnel (the hosts are not neighbours), and strict reverse-path filtering must hold.
Then the same with the hosts on one segment, where `auto` routes directly."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

RECONCILE = """
import ipaddress, json, sys
from controlplane.nodehandler.iproute import KernelIp
from controlplane.nodehandler.vmroutes import RouteReconciler
from controlplane.nodehandler.vxlan import KernelTunnel

me, my_ip, world = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rec = RouteReconciler(KernelIp(table=166, protocol=166, rule_priority=166), me=me, my_ip=my_ip,
                      vm_net=ipaddress.IPv4Network("10.66.0.0/16"), bridge="dvpbr0",
                      instances=lambda: world["instances"], nodes=lambda: world["nodes"], tunnel=KernelTunnel())
out = rec.reconcile()
print(json.dumps({"errors": out.errors, "unreachable": out.unreachable}))
"""


def sh(*argv: str) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


@dataclass
class Net:
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    names: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, short: str) -> str:
        name = f"dvprt{self.tag}-{short}"
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        tmp_a, tmp_b = f"t{self.tag}{secrets.token_hex(2)}", f"t{self.tag}{secrets.token_hex(2)}"
        sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        sh("ip", "link", "set", tmp_a, "netns", a)
        sh("ip", "link", "set", tmp_b, "netns", b)
        sh("ip", "-n", a, "link", "set", tmp_a, "name", a_if)
        sh("ip", "-n", b, "link", "set", tmp_b, "name", b_if)
        for ns, dev in ((a, a_if), (b, b_if)):
            sh("ip", "-n", ns, "link", "set", dev, "up")

    def serve(self, ns: str, address: str, port: int) -> None:
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", "--bind",
                                            address, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], check=False)


def host(net: Net, short: str, vm_ip: str) -> tuple[str, str]:
    """A host with eth0 (address given), a VM bridge with the gateway, and a VM serving HTTP."""
    h = net.ns(short)
    vm = net.ns(f"{short}vm")
    sh("ip", "-n", h, "link", "add", "name", "dvpbr0", "type", "bridge")
    sh("ip", "-n", h, "addr", "add", "10.66.0.1/16", "dev", "dvpbr0")
    sh("ip", "-n", h, "link", "set", "dvpbr0", "up")
    net.link(h, "vnet0", vm, "eth0")
    sh("ip", "-n", h, "link", "set", "vnet0", "master", "dvpbr0")
    sh("ip", "-n", vm, "addr", "add", f"{vm_ip}/16", "dev", "eth0")
    sh("ip", "-n", vm, "route", "add", "default", "via", "10.66.0.1")
    for key in ("all", "default"):  # strict reverse-path filtering: the answers must come back the way they left
        sh("ip", "netns", "exec", h, "sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=1")
    net.serve(vm, vm_ip, 8080)
    return h, vm


def reconcile(h: str, me: str, my_ip: str, world: Mapping[str, object]) -> dict[str, object]:
    out = sh("ip", "netns", "exec", h, sys.executable, "-c", RECONCILE, me, my_ip, json.dumps(world))
    result: dict[str, object] = json.loads(out)
    return result


def get(ns: str, url: str) -> bool:
    done = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sf", "--noproxy", "*", "-m", "3", url],
                          capture_output=True, check=False)
    return done.returncode == 0


def instance(name: str, ip: str, node: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": node, "nics": [{"ip": ip}]},
            "status": {"phase": "Running", "nodeName": node}}


def node(name: str, ip: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                                   "addresses": [{"type": "InternalIP", "address": ip}]}}


@pytest.fixture
def net() -> Iterator[Net]:
    n = Net()
    try:
        yield n
    finally:
        n.close()


def wait_get(ns: str, url: str, want: bool = True, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while get(ns, url) != want:
        if time.monotonic() > deadline:
            return not want
        time.sleep(0.2)
    return want


@pytest.mark.parametrize("layout", ["routed", "segment"])
def test_vms_on_two_hosts_reach_each_other_and_the_hosts(net: Net, layout: str) -> None:
    if layout == "routed":  # 10.1.0.0/24 and 10.2.0.0/24, joined by a router: not neighbours
        r = net.ns("r")
        sh("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        addrs = {"h1": "10.1.0.2", "h2": "10.2.0.2"}
    else:
        addrs = {"h1": "10.1.0.2", "h2": "10.1.0.3"}
    h1, v1 = host(net, "h1", "10.66.0.10")
    h2, v2 = host(net, "h2", "10.66.0.11")
    if layout == "routed":
        net.link(r, "r1", h1, "eth0")
        net.link(r, "r2", h2, "eth0")
        sh("ip", "-n", r, "addr", "add", "10.1.0.1/24", "dev", "r1")
        sh("ip", "-n", r, "addr", "add", "10.2.0.1/24", "dev", "r2")
        for h, gw in ((h1, "10.1.0.1"), (h2, "10.2.0.1")):
            sh("ip", "-n", h, "addr", "add", f"{addrs['h1' if h == h1 else 'h2']}/24", "dev", "eth0")
            sh("ip", "-n", h, "route", "add", "default", "via", gw)
    else:
        net.link(h1, "eth0", h2, "eth0")
        sh("ip", "-n", h1, "addr", "add", "10.1.0.2/24", "dev", "eth0")
        sh("ip", "-n", h2, "addr", "add", "10.1.0.3/24", "dev", "eth0")
    net.serve(h2, addrs["h2"], 8081)
    world = {"instances": [instance("web", "10.66.0.10", "h1"), instance("client", "10.66.0.11", "h2")],
             "nodes": [node("h1", addrs["h1"]), node("h2", addrs["h2"])]}
    for h, me in ((h1, "h1"), (h2, "h2")):
        assert reconcile(h, me, addrs[me], world) == {"errors": [], "unreachable": {}}
    table = sh("ip", "-n", h2, "-4", "route", "show", "table", "166")
    if layout == "routed":
        assert f"10.66.0.10 via {addrs['h1']} dev dvpvx0" in table, table
    else:
        assert f"10.66.0.10 via {addrs['h1']} dev eth0" in table and "dvpvx0" not in table, table
    assert wait_get(h2, "http://10.66.0.10:8080/"), "host h2 -> VM on h1"
    assert wait_get(v2, "http://10.66.0.10:8080/"), "VM on h2 -> VM on h1"
    assert wait_get(v1, f"http://{addrs['h2']}:8081/"), "VM on h1 -> host h2 (its answer goes back the same way)"
    # the web VM stops: its route goes from h2, and nothing answers for it
    world["instances"] = [instance("client", "10.66.0.11", "h2")]
    for h, me in ((h1, "h1"), (h2, "h2")):
        reconcile(h, me, addrs[me], world)
    assert "10.66.0.10" not in sh("ip", "-n", h2, "-4", "route", "show", "table", "166")
    assert not get(h2, "http://10.66.0.10:8080/")
