"""A lab of test hosts: network namespaces with their own address, host name, PID namespace
and user database, each running a real OpenSSH server.

Layout per lab: a random /24 in 10.200-250.x.0 (checked against existing routes), made
`unreachable` as a whole in the root namespace so nothing leaks out through a default route;
host i gets the /30 block i (root side .4i+1, host .4i+2) over a veth pair. A lab made with
`lan=True` is one L2 segment instead, as the hosts of a cluster are: a bridge in the root
namespace holds .1/24 (its route takes the unreachable route's place), every host's veth
joins it and host i has .4i+2/24, so hosts reach each other (and the root namespace reaches
them) directly, on-link. Each host runs
`ip netns exec NS unshare --uts --pid --mount --fork --kill-child --mount-proc` with its own
hostname, bind-mounted /etc/{hosts,passwd,shadow,group,sudoers}, then `sshd -D -f <own
config>`. A bind mount over a file holds only while the host's file is not replaced: `useradd`
on this machine (renaming a new /etc/passwd over the old) makes the kernel drop it, and the lab
hosts lose their users ("Invalid user dvpop"), so the one user the tests add (libvirt's, by
`libvirtd.prepare_host`) is made before a host's files are copied. `DVP_HOST_ROOT` is set for
SSH sessions (sshd `SetEnv`) when the host is given a root of recorded host files. Everything is stopped by PID and removed in `close()`.

Users on every host: root (key), `dvpop` (password; sudo with password), `dvpnopw` (key;
sudo NOPASSWD), `dvpnosudo` (key and password; no sudo). Passwords are random per lab.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.services.libvirtd import prepare_host
from tests.services.processes import RUN_DIR, locked

SSHD = "/usr/sbin/sshd"
DEAD_MAC = "02:de:ad:be:ef:01"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


@dataclass
class LabUser:
    name: str
    uid: int
    password: str | None
    sudo: str  # "password" | "nopasswd" | "none"


@dataclass
class LabHost:
    """One running test host."""

    name: str
    hostname: str
    netns: str
    address: str
    port: int
    dir: Path
    host_key_pub: str = ""
    proc: subprocess.Popen[bytes] | None = None
    ns_pid: int = 0
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def sshd_log_tail(self, lines: int = 20) -> str:
        """The end of this host's sshd log (why a login was refused, for a failing test's report)."""
        log = self.dir / "sshd.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no sshd log)"

    def known_hosts_line(self) -> str:
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        kind, blob = self.host_key_pub.split()[:2]
        return f"{name} {kind} {blob}\n"

    def nsenter(self, *argv: str) -> list[str]:
        """argv that runs inside this host's namespaces (network, PID, mount, UTS)."""
        return ["nsenter", "-t", str(self.ns_pid), "-n", "-p", "-m", "-u", "--", *argv]

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return _run(*self.nsenter(*argv))

    def spawn(self, *argv: str, ready_line: bytes | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running process inside the host; it dies with the host."""
        proc = subprocess.Popen(self.nsenter(*argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.extra.append(proc)
        if ready_line is not None:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert ready_line in line, f"{argv} did not start: {line!r}"
        return proc


class HostLab:
    def __init__(self, workdir: Path | None = None, *, prefix: str | None = None, lan: bool = False) -> None:
        # sshd reads authorized_keys with the user's own rights: the lab directory must be
        # reachable by the test users, so by default it is a fresh 0755 directory in /tmp.
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="dvp-hostlab-"))
            workdir.chmod(0o755)
        self.workdir = workdir
        self.prefix = prefix or f"dk{secrets.token_hex(2)}"
        self.subnet = self._pick_subnet()
        self.hosts: list[LabHost] = []
        self._netns: list[str] = []
        self._links: list[str] = []
        self._next_block = 0
        self._closed = False
        self.bridge = f"{self.prefix}br"[:15] if lan else None
        workdir.mkdir(parents=True, exist_ok=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        if self.bridge is None:
            _run("ip", "route", "add", "unreachable", str(self.subnet))
        else:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            self._links.append(self.bridge)
            _run("ip", "addr", "add", f"{self.subnet.network_address + 1}/{self.subnet.prefixlen}", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
        self.client_key = workdir / "client_ed25519"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dvp-lab-client", "-f", str(self.client_key))
        self.client_key_pub = (workdir / "client_ed25519.pub").read_text()
        token = secrets.token_hex(6)
        self.users = [
            LabUser("dvpop", 61001, f"op-{token}", "password"),
            LabUser("dvpnopw", 61002, None, "nopasswd"),
            LabUser("dvpnosudo", 61003, f"ns-{token}", "none"),
        ]
        self.sudo_password = self.users[0].password

    # -- addressing -----------------------------------------------------------------------
    def _pick_subnet(self) -> ipaddress.IPv4Network:
        routes = _run("ip", "-o", "route", "show", "table", "all").stdout
        used = []
        for line in routes.splitlines():
            for word in line.split():
                with contextlib.suppress(ValueError):
                    if "/" in word or word.count(".") == 3:
                        used.append(ipaddress.ip_network(word, strict=False))
        # the platform's default pod, service and VM networks: a lab inside one fails the preflight
        used += [ipaddress.ip_network(n) for n in ("10.111.0.0/16", "10.222.0.0/16", "10.66.0.0/16")]
        rnd = random.Random()
        for _ in range(200):
            net = ipaddress.IPv4Network(f"10.{rnd.randint(200, 250)}.{rnd.randint(0, 255)}.0/24")
            if not any(net.overlaps(u) for u in used if u.version == 4 and u.prefixlen > 0):
                return net
        raise RuntimeError("no free /24 for the host lab")

    def _block(self) -> tuple[str, str]:
        i = self._next_block
        self._next_block += 1
        if i >= 63:
            raise RuntimeError("a lab holds at most 63 hosts")
        base = int(self.subnet.network_address) + 4 * i
        return str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 2))

    def _netns_with_link(self, short: str, *, peer_ns: str | None = None) -> tuple[str, str, str, str]:
        """A netns with eth0 linked to the root namespace (or to `peer_ns`)."""
        ns = f"{self.prefix}-{short}"
        _run("ip", "netns", "add", ns)
        self._netns.append(ns)
        outer_addr, inner_addr = self._block()
        outer = f"{self.prefix}{short}"[:15]
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", f"{outer[:13]}p")
        if peer_ns is None:
            self._links.append(outer)
        else:
            _run("ip", "link", "set", outer, "netns", peer_ns)
        _run("ip", "link", "set", f"{outer[:13]}p", "netns", ns)
        where = ["ip", "-n", peer_ns] if peer_ns else ["ip"]
        prefixlen = 30
        if self.bridge is not None and peer_ns is None:
            _run("ip", "link", "set", outer, "master", self.bridge)
            prefixlen = self.subnet.prefixlen
        else:
            _run(*where, "addr", "add", f"{outer_addr}/30", "dev", outer)
        _run(*where, "link", "set", outer, "up")
        _run("ip", "-n", ns, "link", "set", f"{outer[:13]}p", "name", "eth0")
        _run("ip", "-n", ns, "addr", "add", f"{inner_addr}/{prefixlen}", "dev", "eth0")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        return ns, outer, outer_addr, inner_addr

    # -- hosts ----------------------------------------------------------------------------
    def add_host(
        self,
        short: str,
        *,
        hostname: str | None = None,
        host_root: Path | None = None,
        port: int = 22,
        resolve_self: bool = True,
        behind: LabHost | None = None,
    ) -> LabHost:
        """Start a host with sshd. `behind`: reachable only from that host (a bastion)."""
        ns, _, outer_addr, addr = self._netns_with_link(short, peer_ns=behind.netns if behind else None)
        hostname = hostname or f"node-{short}"
        hdir = self.workdir / short
        (hdir / "etc").mkdir(parents=True)
        (hdir / "authorized_keys").mkdir()
        host = LabHost(short, hostname, ns, addr, port, hdir)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lab-{short}", "-f", str(hdir / "ssh_host_ed25519_key"))
        host.host_key_pub = (hdir / "ssh_host_ed25519_key.pub").read_text()
        with locked(RUN_DIR / "libvirt" / "ctl.lock"):
            prepare_host()  # this machine's users as final before they are copied (see above)
        self._write_etc(host, resolve_self=resolve_self)
        for user in ["root", *(u.name for u in self.users)]:
            (hdir / "authorized_keys" / user).write_text(self.client_key_pub)
        config = [
            f"ListenAddress {addr}:{port}",
            f"HostKey {hdir / 'ssh_host_ed25519_key'}",
            "PidFile none",
            f"AuthorizedKeysFile {hdir / 'authorized_keys'}/%u",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding yes",
            "MaxStartups 200:30:400",
            "LogLevel VERBOSE",  # names the reason a login is refused
        ]
        if host_root is not None:
            config.append(f"SetEnv DVP_HOST_ROOT={host_root}")
        (hdir / "sshd_config").write_text("\n".join(config) + "\n")
        binds = " ".join(
            f"mount --bind {hdir / 'etc' / name} /etc/{name};" for name in ("hosts", "passwd", "shadow", "group", "sudoers")
        )
        script = f"echo {hostname} > /proc/sys/kernel/hostname; {binds} exec {SSHD} -D -e -f {hdir / 'sshd_config'}"
        log = open(hdir / "sshd.log", "wb")  # noqa: SIM115 - owned by the process
        host.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "unshare", "--uts", "--pid", "--mount", "--fork", "--kill-child",
             "--mount-proc", "--", "/bin/sh", "-c", script],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.hosts.append(host)
        self._wait_ready(host)
        return host

    def _write_etc(self, host: LabHost, *, resolve_self: bool) -> None:
        etc = host.dir / "etc"
        hosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
        if resolve_self:
            hosts += f"{host.address} {host.hostname}\n"
        (etc / "hosts").write_text(hosts)
        home = host.dir / "home"
        passwd = Path("/etc/passwd").read_text()
        group = Path("/etc/group").read_text()
        shadow = Path("/etc/shadow").read_text()
        for u in self.users:
            (home / u.name).mkdir(parents=True)
            os.chown(home / u.name, u.uid, u.uid)
            passwd += f"{u.name}:x:{u.uid}:{u.uid}::{home / u.name}:/bin/sh\n"
            group += f"{u.name}:x:{u.uid}:\n"
            hashed = "*"
            if u.password:
                hashed = subprocess.run(
                    ["openssl", "passwd", "-6", "-stdin"], input=u.password, capture_output=True, text=True, check=True
                ).stdout.strip()
            shadow += f"{u.name}:{hashed}:20000:0:99999:7:::\n"
        (etc / "passwd").write_text(passwd)
        (etc / "group").write_text(group)
        (etc / "shadow").write_text(shadow)
        os.chmod(etc / "shadow", 0o640)
        sudoers = [
            "Defaults env_reset",
            "Defaults timestamp_timeout=0",
            "Defaults !lecture",
            'Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
            "root ALL=(ALL:ALL) ALL",
        ]
        for u in self.users:
            if u.sudo == "password":
                sudoers.append(f"{u.name} ALL=(ALL:ALL) ALL")
            elif u.sudo == "nopasswd":
                sudoers.append(f"{u.name} ALL=(ALL:ALL) NOPASSWD: ALL")
        (etc / "sudoers").write_text("\n".join(sudoers) + "\n")
        os.chmod(etc / "sudoers", 0o440)

    def _wait_ready(self, host: LabHost, timeout: float = 15.0) -> None:
        assert host.proc is not None
        deadline = time.monotonic() + timeout
        log = host.dir / "sshd.log"
        while time.monotonic() < deadline:
            if host.proc.poll() is not None:
                raise RuntimeError(f"sshd of {host.name} exited: {log.read_text()}")
            children = Path(f"/proc/{host.proc.pid}/task/{host.proc.pid}/children")
            with contextlib.suppress(OSError):
                pids = children.read_text().split()
                if pids:
                    host.ns_pid = int(pids[0])
            if host.ns_pid and b"Server listening" in log.read_bytes():
                return
            time.sleep(0.02)
        raise RuntimeError(f"sshd of {host.name} did not start: {log.read_text()}")

    def add_silent(self, short: str) -> tuple[str, int]:
        """A host whose port 22 accepts TCP connections and never says a word."""
        ns, _, _, addr = self._netns_with_link(short)
        code = (
            "import socket,sys,time\n"
            f"s=socket.socket(); s.bind(('{addr}', 22)); s.listen(64)\n"
            "print('ready', flush=True)\n"
            "conns=[]\n"
            "while True: conns.append(s.accept())\n"
        )
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", code], stdout=subprocess.PIPE)
        assert proc.stdout is not None and b"ready" in proc.stdout.readline()
        self.hosts.append(LabHost(short, short, ns, addr, 22, self.workdir, proc=proc))
        return addr, 22

    def add_blackhole(self, short: str) -> str:
        """An address whose packets vanish (no answer, no error): a pure connect timeout."""
        ns, outer, _, addr = self._netns_with_link(short)
        _run("ip", "neigh", "replace", addr, "lladdr", DEAD_MAC, "dev", outer, "nud", "permanent")
        return addr

    # -- helpers --------------------------------------------------------------------------
    def known_hosts(self, hosts: list[LabHost] | None = None) -> str:
        return "".join(h.known_hosts_line() for h in (hosts or self.hosts) if h.host_key_pub)

    def user(self, name: str) -> LabUser:
        return next(u for u in self.users if u.name == name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for host in self.hosts:
            for proc in host.extra:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
            if host.ns_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(host.ns_pid, signal.SIGTERM)
            if host.proc is not None:
                try:
                    host.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(host.ns_pid, signal.SIGKILL) if host.ns_pid else None
                        host.proc.kill()
                    host.proc.wait()
                if host.proc.stdout:
                    host.proc.stdout.close()
        for ns in self._netns:
            _run("ip", "netns", "del", ns, check=False)
        for link in self._links:
            _run("ip", "link", "del", link, check=False)
        if self.bridge is None:
            _run("ip", "route", "del", "unreachable", str(self.subnet), check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_port(address: str, port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
