"""`KernelIp` against the real kernel, in a throwaway network namespace: the policy rule, the
tagged routes of our table (listed, replaced, deleted), routes without our tag left alone,
the on-link check, and the bridge's sysctls. Each case runs in a child process inside the
namespace (`ip netns exec`), which prints what it saw as JSON."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import ipaddress, json, subprocess
from controlplane.nodehandler.iproute import IpError, KernelIp, KernelRoute

def sh(*a):
    subprocess.run(list(a), check=True, capture_output=True)

sh("ip", "link", "set", "lo", "up")
sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
sh("ip", "link", "set", "eth0p", "up")
sh("ip", "addr", "add", "192.168.7.2/24", "dev", "eth0")
sh("ip", "link", "set", "eth0", "up")
sh("ip", "link", "add", "name", "dvpbr0", "type", "bridge")
sh("ip", "addr", "add", "10.66.0.1/16", "dev", "dvpbr0")
sh("ip", "link", "set", "dvpbr0", "up")
# someone else's route in our table, without our tag: listed never, deleted never
sh("ip", "route", "add", "10.66.9.0/24", "via", "192.168.7.9", "table", "166")
ip = KernelIp(table=166, protocol=166, rule_priority=166)
out = {}
out["empty"] = {k: v.__dict__ for k, v in ip.routes().items()}
ip.prepare_bridge("dvpbr0")
out["sysctl"] = [open(p).read().strip() for p in ("/proc/sys/net/ipv4/ip_forward",
                 "/proc/sys/net/ipv4/conf/dvpbr0/proxy_arp", "/proc/sys/net/ipv4/neigh/dvpbr0/proxy_delay")]
ip.ensure_rule(ipaddress.IPv4Network("10.66.0.0/16"))
ip.ensure_rule(ipaddress.IPv4Network("10.66.0.0/16"))
ip.ensure_rule(ipaddress.IPv4Network("10.77.0.0/16"))  # the VM network changed: ours replaced
out["rules"] = subprocess.run(["ip", "-4", "rule", "show"], capture_output=True, text=True).stdout
ip.replace(KernelRoute("10.66.0.5/32", "192.168.7.3", "192.168.7.2"))
ip.replace(KernelRoute("10.66.0.6/32", "192.168.7.4", "192.168.7.2"))
ip.replace(KernelRoute("10.66.0.6/32", "192.168.7.5", "192.168.7.2"))
out["listed"] = {k: v.__dict__ for k, v in ip.routes().items()}
ip.delete("10.66.0.5/32")
out["after_delete"] = sorted(ip.routes())
out["table"] = subprocess.run(["ip", "-4", "route", "show", "table", "166"], capture_output=True, text=True).stdout
out["lookup"] = subprocess.run(["ip", "-4", "route", "get", "10.66.0.6"], capture_output=True, text=True).stdout
out["local_lookup"] = subprocess.run(["ip", "-4", "route", "get", "10.66.0.7"], capture_output=True, text=True).stdout
out["on_link"] = [ip.on_link("192.168.7.3"), ip.on_link("172.20.0.9"), ip.on_link("192.168.7.2")]
try:
    ip.replace(KernelRoute("10.66.0.8/32", "172.20.0.9", "192.168.7.2"))
    out["off_link_error"] = ""
except IpError as exc:
    out["off_link_error"] = str(exc)
print(json.dumps(out))
"""


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"dvp-iprt-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_kernel_ip_owns_only_its_tagged_routes_in_its_table(netns: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", SCRIPT], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["empty"] == {}
    assert out["sysctl"] == ["1", "1", "0"]
    ours = [line.split() for line in out["rules"].splitlines() if line.startswith(("166:", "167:"))]
    assert ours == [["166:", "from", "all", "to", "10.77.0.0/16", "lookup", "166"],
                    ["167:", "from", "10.77.0.0/16", "lookup", "166"]]
    assert out["listed"] == {
        "10.66.0.5/32": {"dst": "10.66.0.5/32", "via": "192.168.7.3", "src": "192.168.7.2", "dev": "eth0"},
        "10.66.0.6/32": {"dst": "10.66.0.6/32", "via": "192.168.7.5", "src": "192.168.7.2", "dev": "eth0"},
    }
    assert out["after_delete"] == ["10.66.0.6/32"]
    assert "10.66.9.0/24 via 192.168.7.9" in out["table"]  # the foreign route is still there
    assert "via 192.168.7.5" not in out["lookup"]  # 10.77/16 is the rule now: 10.66.0.6 is looked up in main
    assert out["on_link"] == [True, False, False]
    assert "failed" in out["off_link_error"]


def test_rule_sends_vm_addresses_to_our_table(netns: str) -> None:
    script = SCRIPT.replace('ip.ensure_rule(ipaddress.IPv4Network("10.77.0.0/16"))', "pass")
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", script], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "10.66.0.6 via 192.168.7.5 dev eth0 table 166 src 192.168.7.2" in out["lookup"]
    assert "dev dvpbr0" in out["local_lookup"]  # not in our table: the bridge's connected route


ANNOUNCE = """
import subprocess, sys
from controlplane.nodehandler.iproute import KernelIp

vm = sys.argv[1]
def sh(*a):
    subprocess.run(list(a), check=True, capture_output=True)

sh("ip", "link", "add", "name", "dvpbr0", "type", "bridge")
sh("ip", "addr", "add", "10.66.0.1/16", "dev", "dvpbr0")
sh("ip", "link", "add", "vnet0", "type", "veth", "peer", "name", "guest0")
sh("ip", "link", "set", "vnet0", "master", "dvpbr0")
sh("ip", "link", "set", "guest0", "netns", vm)
for dev in ("vnet0", "dvpbr0"):
    sh("ip", "link", "set", dev, "up")
sh("ip", "-n", vm, "addr", "add", "10.66.0.20/16", "dev", "guest0")
sh("ip", "-n", vm, "link", "set", "guest0", "up")
# the guest learnt 10.66.0.6 while that VM ran on this host, with the VM's own MAC
sh("ip", "-n", vm, "neigh", "replace", "10.66.0.6", "lladdr", "52:54:00:00:00:06", "dev", "guest0", "nud", "stale")
KernelIp(table=166, protocol=166, rule_priority=166).announce("dvpbr0", "10.66.0.6")
import time; time.sleep(0.3)
print(subprocess.run(["ip", "-n", vm, "neigh", "show", "10.66.0.6"], capture_output=True, text=True).stdout)
print(open("/sys/class/net/dvpbr0/address").read().strip())
"""


def test_announce_moves_a_guest_arp_entry_to_the_bridge(netns: str) -> None:
    vm = f"{netns}-vm"
    subprocess.run(["ip", "netns", "add", vm], check=True)
    try:
        done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", ANNOUNCE, vm], capture_output=True,
                              text=True, cwd=REPO)
    finally:
        subprocess.run(["ip", "netns", "del", vm], check=False)
    assert done.returncode == 0, done.stderr
    *_, neigh, bridge_mac = [ln for ln in done.stdout.splitlines() if ln.strip()]
    assert f"lladdr {bridge_mac}" in neigh, (neigh, bridge_mac)
