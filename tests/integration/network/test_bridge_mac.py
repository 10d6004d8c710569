"""The VM bridge's MAC (`NodeNetwork`, controlplane/nodehandler/network.py) against the real
kernel, in throwaway network namespaces: a guest's gateway keeps one MAC while ports come and go
(a Linux bridge left alone takes its lowest port's), the same on every host with that gateway,
and a bridge of an earlier version is given it with an announcement that moves the guest's ARP
entry at once. The case runs in a child process inside the namespace (`ip netns exec`)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.nodehandler.network import gateway_mac

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import ipaddress, json, subprocess, sys, time
from pathlib import Path
from controlplane.nodehandler.network import NodeNetwork

vm, state = sys.argv[1], Path(sys.argv[2])
def sh(*a):
    return subprocess.run(list(a), check=True, capture_output=True, text=True).stdout
def mac():
    return Path("/sys/class/net/dvpbr0/address").read_text().strip()
def guest_gateway():
    return sh("ip", "-n", vm, "neigh", "show", "10.66.0.1").split()
out = {}
# a bridge as an earlier version left it, a guest on it that knows its gateway's MAC
sh("ip", "link", "add", "name", "dvpbr0", "type", "bridge")
sh("ip", "link", "set", "dvpbr0", "address", "02:11:22:33:44:55")
sh("ip", "link", "add", "vnet0", "address", "fe:54:00:00:00:20", "type", "veth", "peer", "name", "guest0")
sh("ip", "link", "set", "vnet0", "master", "dvpbr0")
sh("ip", "link", "set", "vnet0", "up")
sh("ip", "link", "set", "guest0", "netns", vm)
sh("ip", "-n", vm, "addr", "add", "10.66.0.20/16", "dev", "guest0")
sh("ip", "-n", vm, "link", "set", "guest0", "up")
sh("ip", "-n", vm, "neigh", "replace", "10.66.0.1", "lladdr", "02:11:22:33:44:55", "dev", "guest0", "nud", "stale")
net = NodeNetwork(bridge="dvpbr0", subnet=ipaddress.IPv4Network("10.66.0.0/16"), state_dir=state)
try:
    net.ensure()
    time.sleep(0.3)
    out["adopted"] = mac()
    out["guest_after_adoption"] = guest_gateway()
    seen = []
    for i, port_mac in enumerate(("02:00:00:00:00:01", "00:00:00:00:00:02")):  # lower than ours
        sh("ip", "link", "add", f"p{i}", "address", port_mac, "type", "veth", "peer", "name", f"p{i}x")
        sh("ip", "link", "set", f"p{i}", "master", "dvpbr0")
        sh("ip", "link", "set", f"p{i}", "up")
        seen.append(mac())
    sh("ip", "link", "del", "p1")
    sh("ip", "link", "del", "vnet0")
    seen.append(mac())
    out["with_ports_coming_and_going"] = seen
    net.ensure()
    out["again"] = mac()
finally:
    net.teardown()
net.ensure()  # created afresh
try:
    out["created"] = mac()
finally:
    net.teardown()
print(json.dumps(out))
"""


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    names = [f"dvp-brmac-{secrets.token_hex(3)}", f"dvp-brvm-{secrets.token_hex(3)}"]
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    yield names
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_the_bridge_keeps_one_mac_derived_from_its_gateway(namespaces: list[str], tmp_path: Path) -> None:
    host, vm = namespaces
    done = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", SCRIPT, vm, str(tmp_path / "net")],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    ours = gateway_mac("10.66.0.1")
    assert ours == "0a:58:0a:42:00:01"
    assert out["adopted"] == ours
    assert out["guest_after_adoption"][:4] == ["10.66.0.1", "dev", "guest0", "lladdr"], out
    assert out["guest_after_adoption"][4] == ours, out  # moved by the announcement, not by expiry
    assert out["with_ports_coming_and_going"] == [ours, ours, ours]
    assert out["again"] == ours and out["created"] == ours
