"""Where the installed platform is: its hosts (from the install config `dvp install` used),
how to reach each over SSH, which service each runs, which Node it is, and a kubeconfig for
the API.

The embedded target only: the master host runs `dvp-server` (API server, DVCR, controllers and
its own node handler), every worker runs `dvp-agent`. The master comes first. Without
`--kubeconfig` the admin kubeconfig is read from the master (`hostlayout.ADMIN_KUBECONFIG`) into
the run directory (mode 0600; it holds a token); a server URL on loopback is pointed at the
master's address, with the certificate still checked for the name the server wrote.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from installer import hostlayout
from installer.config.models import InstallConfig
from installer.ssh.bastion import BastionPool
from installer.ssh.hostkeys import KnownHosts
from installer.ssh.target import SSHTarget, targets_from_config
from installer.upgrade.remote import HostSession, RemoteError


class PlatformError(Exception):
    """The platform cannot be worked on as described; the message says what to fix."""


@dataclass
class PlatformHost:
    name: str
    role: str  # master | worker
    target: SSHTarget
    node: str = ""
    session: HostSession | None = None

    @property
    def service(self) -> hostlayout.ServiceName:
        return "dvp-server" if self.role == "master" else "dvp-agent"

    @property
    def address(self) -> str:
        return self.target.endpoint.address

    def s(self) -> HostSession:
        assert self.session is not None, f"{self.name} not connected"
        return self.session


@dataclass
class Platform:
    hosts: list[PlatformHost]
    known_hosts: KnownHosts
    bastions: BastionPool
    kubeconfig: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def server(self) -> PlatformHost:
        return self.hosts[0]

    def host(self, name: str) -> PlatformHost:
        return next(h for h in self.hosts if h.name == name)

    def connect(self) -> None:
        """Open a session to every host and learn its Node name (raises RemoteError)."""
        for h in self.hosts:
            if h.session is None:
                h.session = HostSession(h.target, known_hosts=self.known_hosts, bastions=self.bastions)
                h.node = node_name(h.session)

    def reconnect(self, h: PlatformHost) -> None:
        """A new connection to `h` (after a reboot the old one is dead), in the same session object
        (the record store holds the server's); raises RemoteError."""
        if h.session is None:
            h.session = HostSession(h.target, known_hosts=self.known_hosts, bastions=self.bastions)
        else:
            h.session.reopen()

    def close(self) -> None:
        for h in self.hosts:
            if h.session is not None:
                h.session.close()
                h.session = None


def node_name(session: HostSession) -> str:
    """The Node a host's handler registers: `node-name` of its agent config, else its host name."""
    cmd = (f"n=$(sed -n 's/^node-name:[[:space:]]*//p' {shlex.quote(hostlayout.AGENT_CONFIG)} 2>/dev/null "
           "| tr -d \"\\\"'\" | head -n1); [ -n \"$n\" ] && echo \"$n\" || hostname")
    return session.root(cmd, what="reading the node name").out.strip().lower()


def from_install_config(config: InstallConfig, *, accept_new_host_keys: bool = False) -> Platform:
    if config.target != "embedded":
        raise PlatformError(f"target {config.target!r}: `dvp upgrade` upgrades the embedded target; on dkp the "
                            "virtualization module is upgraded by Deckhouse's release channel")
    targets = targets_from_config(config, accept_new_host_keys=accept_new_host_keys)
    masters = [t for t in targets if t.host.role == "master"]
    if len(masters) != 1:
        raise PlatformError(f"hosts: the embedded target has exactly one master, the config names {len(masters)}")
    hosts = [PlatformHost(t.name, t.host.role, t) for t in masters + [t for t in targets if t.host.role != "master"]]
    known = KnownHosts(config.ssh.known_hosts_file, accept_new=accept_new_host_keys or config.ssh.accept_new_host_keys)
    return Platform(hosts=hosts, known_hosts=known, bastions=BastionPool(known))


def fetch_kubeconfig(platform: Platform, run_dir: Path) -> Path:
    """The master's admin kubeconfig, saved in the run directory (0600), reachable from here."""
    server = platform.server
    raw = server.s().read(hostlayout.ADMIN_KUBECONFIG, what="reading the admin kubeconfig")
    if raw is None:
        raise RemoteError(server.name, "reading the admin kubeconfig",
                          f"{hostlayout.ADMIN_KUBECONFIG} is missing: is the platform installed there?")
    doc = yaml.safe_load(raw)
    for entry in doc.get("clusters", []):
        cluster = entry["cluster"]
        url = urlsplit(cluster["server"])
        if url.hostname in ("127.0.0.1", "localhost", "::1") and not server.target.local:
            port = f":{url.port}" if url.port else ""
            cluster["server"] = urlunsplit((url.scheme, f"{server.address}{port}", url.path, "", ""))
            cluster.setdefault("tls-server-name", url.hostname)
    path = run_dir / "kubeconfig"
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
