"""A host bridge with DHCP (dnsmasq) so test VMs get chosen addresses and the host reaches them.

Each test run creates its own bridge (`dvpt` + 6 random hex digits, an interface name nobody
else uses), gives the host the first address of a free /24 taken from 10.200.0.0/13, and runs
its own dnsmasq on that bridge only: DHCP only for the MAC -> IP bindings the tests register
(`dhcp-range=...,static`), no DNS, with its own pid, lease, hosts and log files. dnsmasq is
stopped by PID and the bridge removed at the end. A run killed with -9 leaves a record in
`/run/dvp-tests/net/`, so the next run removes its bridge and dnsmasq.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.services.processes import (
    RUN_DIR,
    ProcessId,
    command_name,
    locked,
    read_pidfile,
    stop_process,
    write_json,
)

NET_DIR = RUN_DIR / "net"
POOL = ipaddress.IPv4Network("10.200.0.0/13")  # 10.200.0.0 - 10.207.255.255, 2048 /24s
BRIDGE_PREFIX = "dvpt"
FIRST_GUEST_HOST = 10  # guests get .10 and up; .1 is the host


class NetworkSetupError(RuntimeError):
    """The test bridge or its dnsmasq could not be set up."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetworkSetupError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def _used_networks() -> list[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default" and ":" not in dst:
            used.append(ipaddress.IPv4Network(dst, strict=False))
    addrs = json.loads(_ip("-j", "-4", "addr").stdout or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            used.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return used


def _free_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    candidates = list(POOL.subnets(new_prefix=24))
    random.shuffle(candidates)
    for net in candidates:
        if not any(net.overlaps(u) for u in used):
            return net
    raise NetworkSetupError(f"no free /24 left in {POOL} for a test bridge")


def random_mac() -> str:
    """A locally administered MAC in QEMU's 52:54:00 range."""
    return "52:54:00:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


@dataclass
class BridgeNetwork:
    """A bridge with dnsmasq; `allocate()` binds a MAC to the next free address."""

    bridge: str
    subnet: ipaddress.IPv4Network
    state_dir: Path
    dnsmasq: ProcessId | None = None
    hosts: dict[str, str] = field(default_factory=dict)  # mac -> ip

    @property
    def gateway(self) -> str:
        """The host's address on the bridge (also the router dnsmasq hands out)."""
        return str(self.subnet.network_address + 1)

    @property
    def hosts_file(self) -> Path:
        return self.state_dir / "dhcp-hosts"

    @property
    def lease_file(self) -> Path:
        return self.state_dir / "leases"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "dnsmasq.log"

    def allocate(self, *, mac: str | None = None) -> tuple[str, str]:
        """A (MAC, IP) pair registered with dnsmasq: that MAC gets that IP by DHCP."""
        mac = (mac or random_mac()).lower()
        while mac in self.hosts:
            mac = random_mac()
        taken = set(self.hosts.values())
        for host in list(self.subnet.hosts())[FIRST_GUEST_HOST - 1 :]:
            if str(host) not in taken:
                self.add_host(mac, str(host))
                return mac, str(host)
        raise NetworkSetupError(f"no free address left in {self.subnet}")

    def add_host(self, mac: str, ip: str) -> None:
        """Bind `mac` to `ip` and make dnsmasq reread its hosts file (SIGHUP)."""
        if ipaddress.ip_address(ip) not in self.subnet:
            raise ValueError(f"{ip} is not in the test network {self.subnet}")
        self.hosts[mac.lower()] = ip
        tmp = self.hosts_file.with_name("dhcp-hosts.tmp")
        tmp.write_text("".join(f"{m},{i}\n" for m, i in self.hosts.items()))
        tmp.replace(self.hosts_file)
        if self.dnsmasq is not None and self.dnsmasq.alive():
            os.kill(self.dnsmasq.pid, signal.SIGHUP)

    def leases(self) -> dict[str, str]:
        """mac -> ip from dnsmasq's lease file."""
        out = {}
        if self.lease_file.exists():
            for line in self.lease_file.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    out[parts[1].lower()] = parts[2]
        return out

    def start(self) -> None:
        pidfile = self.state_dir / "dnsmasq.pid"
        self.hosts_file.touch()
        cmd = [
            "dnsmasq",
            "--conf-file=/dev/null",
            f"--pid-file={pidfile}",
            f"--interface={self.bridge}",
            "--except-interface=lo",
            "--bind-dynamic",
            "--port=0",  # no DNS
            "--user=root",
            "--group=root",
            f"--dhcp-range={self.subnet.network_address},static,{self.subnet.netmask},1h",
            f"--dhcp-hostsfile={self.hosts_file}",
            f"--dhcp-leasefile={self.lease_file}",
            "--dhcp-authoritative",
            "--dhcp-no-override",
            f"--log-facility={self.log_file}",
            "--log-dhcp",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        pid = read_pidfile(pidfile)
        if done.returncode != 0 or pid is None or command_name(pid) != "dnsmasq":
            raise NetworkSetupError(f"dnsmasq on {self.bridge} failed to start: {done.stderr.strip()}")
        self.dnsmasq = ProcessId.of(pid)

    def stop(self) -> None:
        if self.dnsmasq is not None:
            stop_process(self.dnsmasq)
        _ip("link", "del", self.bridge, check=False)
        (NET_DIR / f"{self.bridge}.json").unlink(missing_ok=True)


def _reap_stale() -> None:
    for record in NET_DIR.glob(f"{BRIDGE_PREFIX}*.json"):
        data = json.loads(record.read_text() or "{}")
        owner = ProcessId.from_json(data["owner"]) if "owner" in data else None
        if owner is not None and owner.alive():
            continue
        if "dnsmasq" in data:
            stop_process(ProcessId.from_json(data["dnsmasq"]))
        _ip("link", "del", record.stem, check=False)
        record.unlink(missing_ok=True)


def create_network(state_root: Path) -> BridgeNetwork:
    """A new bridge + dnsmasq for this test run (see the module docstring)."""
    me = ProcessId.of(os.getpid())
    assert me is not None
    with locked(RUN_DIR / "net.lock"):
        NET_DIR.mkdir(parents=True, exist_ok=True)
        _reap_stale()
        subnet = _free_subnet()
        bridge = f"{BRIDGE_PREFIX}{random.randrange(16**6):06x}"
        state_dir = state_root / bridge
        state_dir.mkdir(parents=True, exist_ok=True)
        net = BridgeNetwork(bridge=bridge, subnet=subnet, state_dir=state_dir)
        record = NET_DIR / f"{bridge}.json"
        write_json(record, {"owner": me.to_json(), "subnet": str(subnet)})
        try:
            _ip("link", "add", "name", bridge, "type", "bridge")
            _ip("addr", "add", f"{net.gateway}/{subnet.prefixlen}", "dev", bridge)
            _ip("link", "set", bridge, "up")
            net.start()
            assert net.dnsmasq is not None
            write_json(
                record, {"owner": me.to_json(), "subnet": str(subnet), "dnsmasq": net.dnsmasq.to_json()}
            )
        except BaseException:
            net.stop()
            raise
    # dnsmasq answers as soon as it runs; give the bridge a moment to settle its address
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and net.gateway not in _ip("-4", "addr", "show", bridge).stdout:
        time.sleep(0.05)
    return net
