"""The node handler's typed configuration: flags of `dvp agent` (or a YAML file with the same
keys, `--config`) are parsed into one `AgentConfig`, validated here with errors that name the
field and the file, before anything starts. `dvp server` builds the same object for its
in-process agent.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from controlplane.common.cpu_share import DEFAULT_NICE, MAX_NICE, MIN_NICE
from controlplane.common.hostport import split_host_port


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field (and file)."""


DOMAIN_TYPES = ("auto", "kvm", "qemu")
ROUTE_MODES = ("auto", "direct", "vxlan")
_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


@dataclass(frozen=True)
class Timings:
    """How often the handler does its periodic work (seconds)."""

    lease_duration: int = 40
    lease_renew_every: float = 10.0
    node_status_every: float = 60.0
    status_refresh_every: float = 10.0
    """A running instance's status is refreshed this often (DHCP lease, guest agent)."""
    ip_poll_every: float = 1.0
    """How often an instance whose NIC has no DHCP lease yet is looked at again."""
    shutdown_poll_every: float = 0.5
    api_wait: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 5.0, 5.0, 10.0, 10.0)
    """Delays between attempts to reach an API server that is not up yet, at start-up."""
    libvirt_retry_every: float = 5.0
    """How often libvirt is tried again when it did not answer at start-up."""
    usb_rescan_every: float = 30.0
    """How often the host's USB devices are read again and published as NodeUSBDevices."""


@dataclass(frozen=True)
class AgentConfig:
    kubeconfig: Path
    node_name: str = field(default_factory=lambda: socket.gethostname().lower())
    state_dir: Path = Path("/var/lib/dvp")
    """Volumes, the image cache, per-instance state (seeds, serial logs) and network state."""
    run_dir: Path = Path("/run/dvp")
    """Unix sockets (VNC); kept short because socket paths are limited to 107 bytes."""
    libvirt_uri: str = "qemu:///system"
    domain_prefix: str = "dvp-"
    """libvirt domain names are `<prefix><namespace>_<name>`; domains are identified by uid."""
    domain_type: str = "auto"
    """`auto` decides from the host (see hypervisor.py); `qemu` forces emulation."""
    host_root: Path = Path("/")
    """Where /proc, /sys and /dev are read for the hypervisor decision and capacity."""
    node_ip: str = ""
    """The address published in Node status.addresses (InternalIP); empty: the default route's."""
    node_role: str = "worker"
    """Shown by `kubectl get nodes` (label node-role.kubernetes.io/<role>): `dvp agent` on a worker,
    `control-plane` for the handler `dvp server` runs on the master."""
    console_listen: str = "0.0.0.0:10250"
    """HOST:PORT of the console/VNC websocket endpoint (port 0 picks a free one)."""
    api_socket: Path | None = None
    """The API server's Unix socket when the handler runs beside it (`dvp server` on the master):
    its requests go there in plain HTTP with the same token, not through TLS; None on workers."""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    pki_dir: Path | None = None
    """A directory holding the platform CA (ca.crt, ca.key): the handler issues its own serving
    certificate from it when no --tls-cert-file is given (the one-host case)."""
    bridge: str = "dvpbr0"
    vm_cidr: str = "10.66.0.0/16"
    """The subnet of the node's VM network; the host takes its first address on the bridge."""
    vm_routes: bool = False
    """Route every VM address that runs on another node to that node (vmroutes.py, docs/network.md).
    It changes the host's routing (a policy rule, a table, forwarding, proxy ARP on the bridge):
    installs turn it on; off by default so a handler run for tests in a shared namespace leaves
    the host's routing alone."""
    vm_route_mode: str = "auto"
    """`auto`: nodes on a subnet of this host directly, the others through VXLAN; `direct`: never
    a tunnel (a node off the segment gets no routes, and a warning); `vxlan`: always the tunnel."""
    route_table: int = 166
    """The routing table the VM routes live in (only ever written by the node handler)."""
    route_protocol: int = 166
    """The protocol number the VM routes carry: only routes with it are ever deleted."""
    route_rule_priority: int = 166
    """Priority of the policy rule `to <vm-cidr> lookup <route-table>`; `from <vm-cidr>` takes the next
    one (both before `main`, 32766)."""
    dvcr_url: str = ""
    """DVCR, for a worker's `dvp agent`: images are pulled with this node's own token (pull role)."""
    dvcr_ca_file: Path | None = None
    cpu_nice: int = DEFAULT_NICE
    """Nice value of the handler and of its CPU group (common/cpu_share.py): busy guests must not starve it."""
    reserved_cpu: int = 0
    reserved_memory: str = "512Mi"
    instance_workers: int = 16
    """Instances reconciled at once: a start mostly waits on libvirt, so many VMs created together start together."""
    volume_workers: int = 2
    timings: Timings = field(default_factory=Timings)

    def validate(self, *, source: str = "command line") -> AgentConfig:
        def bad(name: str, message: str) -> ConfigError:
            return ConfigError(f"{source}: {name}: {message}")

        if not _NODE_NAME.match(self.node_name):
            raise bad("node-name", f"{self.node_name!r} is not a valid node name (lower-case DNS name)")
        if self.domain_type not in DOMAIN_TYPES:
            raise bad("domain-type", f"{self.domain_type!r} is not one of {', '.join(DOMAIN_TYPES)}")
        if not _IFNAME.match(self.bridge):
            raise bad("bridge", f"{self.bridge!r} is not a network interface name (1-15 characters)")
        try:
            net = ipaddress.IPv4Network(self.vm_cidr, strict=True)
        except ValueError as exc:
            raise bad("vm-cidr", f"{self.vm_cidr!r} is not an IPv4 network: {exc}") from exc
        if net.prefixlen > 29:
            raise bad("vm-cidr", f"{self.vm_cidr} is too small: use a /29 or larger")
        if self.node_ip:
            try:
                ipaddress.ip_address(self.node_ip)
            except ValueError as exc:
                raise bad("node-ip", f"{self.node_ip!r} is not an IP address") from exc
        split_listen(self.console_listen, field_name=f"{source}: console-listen")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise bad("tls-cert-file", "give --tls-cert-file and --tls-key-file together")
        if self.tls_cert_file is None and self.pki_dir is None:
            raise bad("tls-cert-file", "the console endpoint needs TLS: give --tls-cert-file/--tls-key-file "
                                       "or --pki-dir (a directory with the platform CA)")
        if self.dvcr_url and not self.dvcr_url.startswith(("https://", "http://")):
            raise bad("dvcr-url", f"{self.dvcr_url!r} is not a URL (e.g. https://10.0.0.1:5443)")
        if len(str(self.run_dir)) > 60:
            raise bad("run-dir", f"{self.run_dir} is too long for unix socket paths (keep it under 60 bytes)")
        if self.vm_route_mode not in ROUTE_MODES:
            raise bad("vm-route-mode", f"{self.vm_route_mode!r} is not one of {', '.join(ROUTE_MODES)}")
        if not 0 < self.route_table < 2**32 or self.route_table in (253, 254, 255):
            raise bad("route-table", f"{self.route_table} is not a free routing table id (1..2^32-1, not 253-255)")
        if not 0 < self.route_protocol < 256:
            raise bad("route-protocol", f"{self.route_protocol} is not a route protocol number (1..255)")
        if not 0 < self.route_rule_priority < 32765:
            raise bad("route-rule-priority", f"{self.route_rule_priority} and the next priority must be below 32766 "
                                             "(the main table's rule)")
        if isinstance(self.cpu_nice, bool) or not isinstance(self.cpu_nice, int) or not MIN_NICE <= self.cpu_nice <= MAX_NICE:
            raise bad("cpu-nice", f"{self.cpu_nice!r} is not a nice value (an integer from {MIN_NICE} to {MAX_NICE})")
        if self.instance_workers < 1 or self.volume_workers < 1:
            raise bad("instance-workers", "worker counts must be at least 1")
        return self

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.vm_cidr)


def split_listen(value: str, *, field_name: str = "listen") -> tuple[str, int]:
    try:
        return split_host_port(value)
    except ValueError as exc:
        raise ConfigError(f"{field_name}: {exc} (e.g. 0.0.0.0:10250)") from None


_PATHS = {"kubeconfig", "state_dir", "run_dir", "host_root", "tls_cert_file", "tls_key_file", "pki_dir", "dvcr_ca_file"}


def _type_problem(annotation: str, value: Any) -> str:
    """Why a value from the file cannot be a setting of this (dataclass field) type; "" if it can."""
    optional = annotation.endswith("| None")
    if value is None:
        return "" if optional else "a value is required (the setting is left out to take its default)"
    kind = annotation.removesuffix("| None").strip()
    ok = {"str": isinstance(value, str), "Path": isinstance(value, str) and bool(value),
          "int": isinstance(value, int) and not isinstance(value, bool), "bool": isinstance(value, bool)}.get(kind, True)
    if ok:
        return ""
    expected = {"str": "a string", "Path": "a path", "int": "an integer", "bool": "true or false"}[kind]
    return f"expected {expected}, got {type(value).__name__}"


def load_config_file(path: Path, **overrides: Any) -> AgentConfig:
    """An AgentConfig from a YAML file (keys as the flags: `node-name`, `state-dir`, ...),
    with `overrides` (flags given on the command line) taking precedence."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the agent configuration: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(doc).__name__}")
    known = {f.name for f in fields(AgentConfig)} - {"timings", "api_socket"}  # (set by `dvp server`, not a setting)
    types = {f.name: str(f.type) for f in fields(AgentConfig)}
    values: dict[str, Any] = {}
    for key, value in doc.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise ConfigError(f"{path}: {key}: unknown setting (known: "
                              f"{', '.join(sorted(k.replace('_', '-') for k in known))})")
        wrong = _type_problem(types[name], value)
        if wrong:
            raise ConfigError(f"{path}: {key}: {wrong}")
        values[name] = Path(value) if name in _PATHS and value is not None else value
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "kubeconfig" not in values:
        raise ConfigError(f"{path}: kubeconfig: required (or give --kubeconfig)")
    try:
        config = AgentConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return config.validate(source=str(path))


def with_overrides(config: AgentConfig, **overrides: Any) -> AgentConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
