"""The node's VM network: a Linux bridge the host sits on, and a dnsmasq that hands each VM the
IP its instance carries, bound to its MAC.

`NodeNetwork.ensure()` (idempotent, at start-up) creates the bridge, gives the host the first
address of the VM subnet on it (so the host reaches every VM address directly, and VMs on the
bridge reach each other at layer 2) and a fixed MAC derived from that address (`gateway_mac`),
and starts dnsmasq on that bridge only: DHCP for
registered MACs only (`dhcp-range=<net>,static`), no DNS, router = the host's address. dnsmasq
runs detached with a pid file under `STATE_DIR/network/<bridge>/`, so it keeps serving leases
when the handler is killed; a restarted handler finds it by pid file and command line and
adopts it instead of starting a second one.

`set_bindings({mac: ip})` rewrites the hosts file when the set changes and sends SIGHUP (dnsmasq
rereads it without dropping leases), then releases leases no binding stands for any more
(`dhcp_release`, from dnsmasq-utils), so an address freed by a deleted VM can go to the next. `leases()` reads dnsmasq's lease file: the IPs reported in
instance status are the ones the guests actually took.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from controlplane.nodehandler.iproute import IpError, link_mac, send_garp

log = logging.getLogger(__name__)


class NetworkError(RuntimeError):
    """The bridge or dnsmasq could not be set up; the message says which command failed."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetworkError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def gateway_mac(gateway: str) -> str:
    """The bridge's MAC: `0a:58` and the gateway's IPv4 octets (OVN-Kubernetes' form), locally
    administered, so the same on every host. A Linux bridge whose MAC is not set takes the lowest
    MAC of its ports, so it would change as VMs' taps come and go and differ between hosts; a
    guest keeps its gateway's MAC in its ARP cache, and after a live migration, or on a host
    whose bridge changed, its packets to the gateway would be dropped until that entry expired
    (tens of seconds). Set explicitly, the MAC never changes, as libvirt's own networks keep
    theirs."""
    return "0a:58:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(gateway).packed)


def render_hosts(bindings: dict[str, str]) -> str:
    """dnsmasq --dhcp-hostsfile content: one `mac,ip` line per binding, sorted for stable diffs."""
    return "".join(f"{mac},{ip}\n" for mac, ip in sorted(bindings.items()))


def parse_leases(text: str) -> dict[str, str]:
    """mac -> ip from a dnsmasq lease file (`expiry mac ip hostname client-id` lines)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out[parts[1].lower()] = parts[2]
    return out


class NodeNetwork:
    def __init__(self, *, bridge: str, subnet: ipaddress.IPv4Network, state_dir: Path) -> None:
        self.bridge = bridge
        self.subnet = subnet
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._bindings: dict[str, str] | None = None

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def hosts_file(self) -> Path:
        return self.state_dir / "dhcp-hosts"

    @property
    def lease_file(self) -> Path:
        return self.state_dir / "leases"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "dnsmasq.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "dnsmasq.log"

    # -- set-up ----------------------------------------------------------------------------------
    def ensure(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_bridge()
        self.hosts_file.touch()
        self._bindings = parse_hosts(self.hosts_file.read_text())
        if self.dnsmasq_pid() is None:
            self._start_dnsmasq()

    def _ensure_bridge(self) -> None:
        mac = gateway_mac(self.gateway)
        have = link_mac(self.bridge)
        moved = False
        if have is None:
            _ip("link", "add", "name", self.bridge, "address", mac, "type", "bridge")
            log.info("created bridge %s (%s)", self.bridge, mac)
        elif have != mac:
            _ip("link", "set", "dev", self.bridge, "address", mac)  # a bridge of an earlier version
            log.info("bridge %s: MAC set to %s", self.bridge, mac)
            moved = True
        addr = f"{self.gateway}/{self.subnet.prefixlen}"
        if f" {addr} " not in _ip("-4", "addr", "show", "dev", self.bridge).stdout:
            _ip("addr", "replace", addr, "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        if moved:  # guests there hold the old MAC for their gateway: tell them at once
            try:
                send_garp(self.bridge, mac, self.gateway)
            except IpError as exc:
                log.warning("%s; guests on %s reach their gateway again when their ARP entry expires", exc,
                            self.bridge)

    def dnsmasq_pid(self) -> int | None:
        """The pid of our running dnsmasq (checked by its command line), or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        cmd = _cmdline(pid)
        if cmd and Path(cmd[0]).name == "dnsmasq" and f"--interface={self.bridge}" in cmd:
            return pid
        return None

    def _start_dnsmasq(self) -> None:
        cmd = [
            "dnsmasq", "--conf-file=/dev/null", f"--pid-file={self.pid_file}", f"--interface={self.bridge}",
            "--except-interface=lo", "--bind-dynamic", "--port=0", "--user=root", "--group=root",
            f"--dhcp-range={self.subnet.network_address},static,{self.subnet.netmask},1h",
            f"--dhcp-option=option:router,{self.gateway}",
            f"--dhcp-hostsfile={self.hosts_file}", f"--dhcp-leasefile={self.lease_file}",
            "--dhcp-authoritative", "--dhcp-no-override", f"--log-facility={self.log_file}", "--log-dhcp",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        deadline = time.monotonic() + 5
        while self.dnsmasq_pid() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if done.returncode != 0 or self.dnsmasq_pid() is None:
            raise NetworkError(f"dnsmasq for bridge {self.bridge} did not start (exit {done.returncode}): "
                               f"{done.stderr.strip() or 'see ' + str(self.log_file)}")
        log.info("started dnsmasq on %s (pid %s)", self.bridge, self.dnsmasq_pid())

    def teardown(self) -> None:
        """Stop dnsmasq and delete the bridge (for uninstall and tests; never on handler exit)."""
        pid = self.dnsmasq_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        _ip("link", "del", self.bridge, check=False)

    # -- bindings and leases ---------------------------------------------------------------------
    def set_bindings(self, bindings: dict[str, str]) -> None:
        """Make dnsmasq's MAC -> IP table exactly `bindings` (no-op when unchanged)."""
        wanted = {m.lower(): ip for m, ip in bindings.items()}
        with self._lock:
            if wanted == self._bindings:
                return
            tmp = self.hosts_file.with_name("dhcp-hosts.tmp")
            tmp.write_text(render_hosts(wanted))
            tmp.replace(self.hosts_file)
            self._bindings = wanted
            pid = self.dnsmasq_pid()
            if pid is None:
                self._start_dnsmasq()
            else:
                os.kill(pid, signal.SIGHUP)
            self._release_stale(wanted)

    def _release_stale(self, wanted: dict[str, str]) -> None:
        """Release leases no binding stands for any more: dnsmasq would not give an address that is
        still leased to a deleted VM's MAC to the next VM that gets it (for the lease's hour)."""
        for mac, ip in self.leases().items():
            if wanted.get(mac) == ip:
                continue
            done = subprocess.run(["dhcp_release", self.bridge, ip, mac], capture_output=True, text=True,
                                  check=False)
            if done.returncode != 0:
                log.warning("releasing the DHCP lease of %s (%s) failed: %s", ip, mac, done.stderr.strip())

    def leases(self) -> dict[str, str]:
        try:
            return parse_leases(self.lease_file.read_text())
        except OSError:
            return {}


def parse_hosts(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        mac, sep, ip = line.strip().partition(",")
        if sep:
            out[mac.lower()] = ip
    return out
