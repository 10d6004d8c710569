"""The tunnel to nodes that are not layer-2 neighbours: one VXLAN device per host (`dvpvx0`,
VNI 166, UDP 4789, no learning), flannel's way. Each peer node gets a static FDB entry (its
VTEP MAC -> its InternalIP) and a permanent neighbour entry (its InternalIP -> that MAC) on the
device, so a route `<vm>/32 via <peer> dev dvpvx0 onlink` needs no ARP across the tunnel.

A VTEP MAC is derived from the node's IPv4 address (`02:76:a:b:c:d`), so no node has to
publish anything: every host computes every peer's MAC, and sets its own device's MAC from its
own address. The device's MTU leaves room for the 50 bytes of VXLAN headers; reverse-path
filtering on it is loose (a VM's answer to a host may come back by the underlay).

`TunnelLayer` is the narrow interface the route reconciler uses (faked in unit tests);
`KernelTunnel` does it with `ip` and `bridge`. Every FDB and neighbour entry on the device is
ours (nothing else uses it), so the peers it holds are exactly what `peers()` lists.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path
from typing import Protocol

from controlplane.nodehandler.iproute import IpError

DEVICE = "dvpvx0"
VNI = 166
PORT = 4789
OVERHEAD = 50


def vtep_mac(address: str) -> str:
    return "02:76:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(address).packed)


class TunnelLayer(Protocol):
    device: str

    def ensure(self, local: str) -> None:
        """The device exists, sourced from `local`, with `local`'s VTEP MAC, up."""

    def peers(self) -> set[str]: ...

    def add_peer(self, address: str) -> None: ...

    def remove_peer(self, address: str) -> None: ...


class KernelTunnel:
    device = DEVICE

    def __init__(self, *, mtu: int = 1500 - OVERHEAD, proc_sys: Path = Path("/proc/sys")) -> None:
        self.mtu = mtu
        self.proc_sys = proc_sys

    def _run(self, *argv: str) -> str:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise IpError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or done.returncode}")
        return done.stdout

    def ensure(self, local: str) -> None:
        shown = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", self.device], capture_output=True, text=True,
                               check=False)
        links = json.loads(shown.stdout or "[]") if shown.returncode == 0 else []
        data = ((links[0].get("linkinfo") or {}).get("info_data") or {}) if links else {}
        if links and data.get("local") != local:  # the node's address changed: a device for the new one
            self._run("ip", "link", "del", self.device)
            links = []
        if not links:
            self._run("ip", "link", "add", self.device, "type", "vxlan", "id", str(VNI), "local", local,
                      "dstport", str(PORT), "nolearning")
            links = [{}]
        mac = vtep_mac(local)
        if links[0].get("address") != mac or links[0].get("mtu") != self.mtu:
            self._run("ip", "link", "set", self.device, "address", mac, "mtu", str(self.mtu))
        if "UP" not in (links[0].get("flags") or []):
            self._run("ip", "link", "set", self.device, "up")
        path = self.proc_sys / "net/ipv4/conf" / self.device / "rp_filter"
        try:
            if path.read_text().strip() != "2":
                path.write_text("2\n")
        except OSError as exc:
            raise IpError(f"setting {path} to 2 (loose) failed: {exc}") from exc

    def peers(self) -> set[str]:
        try:
            fdb = json.loads(self._run("bridge", "-j", "fdb", "show", "dev", self.device) or "[]")
        except IpError:
            return set()
        return {str(e["dst"]) for e in fdb if e.get("dst") and e.get("mac") != "00:00:00:00:00:00"}

    def add_peer(self, address: str) -> None:
        mac = vtep_mac(address)
        self._run("bridge", "fdb", "replace", mac, "dev", self.device, "dst", address, "self", "permanent")
        self._run("ip", "neigh", "replace", address, "lladdr", mac, "dev", self.device, "nud", "permanent")

    def remove_peer(self, address: str) -> None:
        for argv in (("bridge", "fdb", "del", vtep_mac(address), "dev", self.device, "dst", address, "self"),
                     ("ip", "neigh", "del", address, "dev", self.device)):
            done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
            if done.returncode != 0 and "No such file" not in done.stderr and "not found" not in done.stderr.lower():
                raise IpError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
