"""The kernel side of the cross-host VM routes, behind one narrow interface (`IpLayer`) so the
route reconciler (vmroutes.py) can be tested against a fake: list the routes of our table that
carry our protocol tag, replace or delete one /32, make sure the policy rule that sends VM
addresses to our table exists, say whether a peer address is on a directly connected subnet,
switch on what the bridge needs (forwarding, proxy ARP without delay), and announce on the bridge
that an address now lives behind the host (a gratuitous ARP), so VMs that still hold the
moved VM's own MAC for it switch to the host at once instead of after their ARP entry expires.

`KernelIp` is the real thing: `ip -4 -j` and files under /proc/sys (per network namespace).
It only ever writes into its own routing table, and only deletes routes that carry its
protocol number, so routes other software put anywhere are never touched.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class IpError(RuntimeError):
    """An `ip` command failed; the message carries the command and what the kernel said."""


@dataclass(frozen=True)
class KernelRoute:
    """One route of our table as the kernel shows it: `dst` is `a.b.c.d/32`; `dev` empty lets the
    kernel pick the device of `via` (direct routes); with both, the gateway is taken as on-link
    (routes into the tunnel); without `via`, the route is scope link on `dev`."""

    dst: str
    via: str
    src: str = ""
    dev: str = ""

    def satisfied_by(self, have: KernelRoute | None) -> bool:
        return have is not None and (have.via, have.src) == (self.via, self.src) and self.dev in ("", have.dev)


class IpLayer(Protocol):
    def routes(self) -> dict[str, KernelRoute]:
        """dst -> route, for routes of our table with our protocol tag."""

    def replace(self, route: KernelRoute) -> None: ...

    def delete(self, dst: str) -> None: ...

    def ensure_rule(self, vm_net: ipaddress.IPv4Network) -> None:
        """`to <vm_net> lookup <our table>` at our priority and `from <vm_net> lookup <our table>`
        just after it exist (and no other rules at those two priorities). The second sends VMs'
        packets to other hosts' own addresses back through the tunnel the request came by."""

    def on_link(self, address: str) -> bool:
        """True when `address` is in a subnet of one of this host's interfaces (L2 adjacent)."""

    def prepare_bridge(self, bridge: str) -> None:
        """Forwarding on, proxy ARP on `bridge` (answered at once, not after a random delay)."""

    def announce(self, bridge: str, address: str) -> None:
        """Tell the VMs on `bridge` that `address` is at the bridge's MAC (gratuitous ARP reply)."""


class KernelIp:
    def __init__(self, *, table: int, protocol: int, rule_priority: int, proc_sys: Path = Path("/proc/sys")) -> None:
        self.table = table
        self.protocol = protocol
        self.rule_priority = rule_priority
        self.proc_sys = proc_sys
        self._addrs: tuple[float, list[dict[str, Any]]] | None = None

    def _ip(self, *args: str) -> str:
        done = subprocess.run(["ip", "-4", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise IpError(f"`ip -4 {' '.join(args)}` failed: {done.stderr.strip() or done.returncode}")
        return done.stdout

    def routes(self) -> dict[str, KernelRoute]:
        try:
            out = self._ip("-j", "route", "show", "table", str(self.table), "proto", str(self.protocol))
        except IpError as exc:
            if "table does not exist" in str(exc):  # nothing was ever added to it
                return {}
            raise
        result: dict[str, KernelRoute] = {}
        for entry in json.loads(out or "[]"):
            dst = str(entry.get("dst", ""))
            if not dst or dst == "default":
                continue
            if "/" not in dst:
                dst += "/32"
            result[dst] = KernelRoute(dst=dst, via=str(entry.get("gateway", "")), src=str(entry.get("prefsrc", "")),
                                      dev=str(entry.get("dev", "")))
        return result

    def replace(self, route: KernelRoute) -> None:
        args = ["route", "replace", route.dst]
        if route.via:
            args += ["via", route.via]
        if route.dev:
            args += ["dev", route.dev] + (["onlink"] if route.via else ["scope", "link"])
        if route.src:
            args += ["src", route.src]
        self._ip(*args, "proto", str(self.protocol), "table", str(self.table))

    def delete(self, dst: str) -> None:
        self._ip("route", "del", dst, "proto", str(self.protocol), "table", str(self.table))

    def ensure_rule(self, vm_net: ipaddress.IPv4Network) -> None:
        for pref, side in ((self.rule_priority, "to"), (self.rule_priority + 1, "from")):
            rules = json.loads(self._ip("-j", "rule", "show", "pref", str(pref)) or "[]")
            key = "dst" if side == "to" else "src"
            if len(rules) == 1 and rules[0].get(key) == str(vm_net.network_address) and \
                    int(rules[0].get(f"{key}len", 32)) == vm_net.prefixlen and str(rules[0].get("table")) == str(self.table):
                continue
            for _ in rules:  # a rule of ours from another VM network: ours, so ours to replace
                self._ip("rule", "del", "pref", str(pref))
            self._ip("rule", "add", "pref", str(pref), side, str(vm_net), "lookup", str(self.table))

    def on_link(self, address: str) -> bool:
        ip = ipaddress.IPv4Address(address)
        now = time.monotonic()
        if self._addrs is None or now - self._addrs[0] > 5:  # one `ip addr` per pass, not one per peer
            self._addrs = (now, json.loads(self._ip("-j", "addr", "show") or "[]"))
        for link in self._addrs[1]:
            for a in link.get("addr_info") or []:
                if a.get("family") != "inet" or a.get("scope") == "host":
                    continue
                net = ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False)
                if net.prefixlen < 32 and ip in net and ip != ipaddress.IPv4Address(a["local"]):
                    return True
        return False

    def prepare_bridge(self, bridge: str) -> None:
        for rel, value in (("net/ipv4/ip_forward", "1"), (f"net/ipv4/conf/{bridge}/proxy_arp", "1"),
                           (f"net/ipv4/neigh/{bridge}/proxy_delay", "0")):
            path = self.proc_sys / rel
            try:
                if path.read_text().strip() != value:
                    path.write_text(value + "\n")
            except OSError as exc:
                raise IpError(f"setting {path} to {value} failed: {exc}") from exc

    def announce(self, bridge: str, address: str) -> None:
        mac = link_mac(bridge)
        if mac is None:
            raise IpError(f"no link {bridge} to announce {address} on")
        send_garp(bridge, mac, address)


def link_mac(name: str) -> str | None:
    """The MAC address of network interface `name`, or None when there is no such interface."""
    shown = subprocess.run(["ip", "-j", "link", "show", "dev", name], capture_output=True, text=True, check=False)
    links = json.loads(shown.stdout or "[]") if shown.returncode == 0 else []
    return str(links[0]["address"]) if links else None


def send_garp(bridge: str, mac: str, address: str) -> None:
    """Broadcast on `bridge`, twice, that `address` is at `mac` (`garp_frame`)."""
    frame = garp_frame(bytes.fromhex(mac.replace(":", "")), ipaddress.IPv4Address(address).packed)
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((bridge, 0))
            for _ in range(2):
                sock.send(frame)
    except OSError as exc:
        raise IpError(f"announcing {address} on {bridge} failed: {exc}") from exc


def garp_frame(mac: bytes, ip: bytes) -> bytes:
    """A broadcast gratuitous ARP reply `ip is-at mac`: sender and target are both `ip` and `mac`
    (what Linux takes as gratuitous, updating an existing entry at once, even with arp_accept off)."""
    broadcast = b"\xff" * 6
    arp = (b"\x00\x01\x08\x00\x06\x04\x00\x02"  # Ethernet, IPv4, hlen 6, plen 4, op 2 (reply)
           + mac + ip + mac + ip)
    return broadcast + mac + b"\x08\x06" + arp
