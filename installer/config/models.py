"""Pydantic models of the install config (`apiVersion: dvp.deckhouse.io/v1alpha1`,
`kind: InstallConfig`). Every field has a docstring: it is the field's description.

Structure only: cross-field rules (overlapping CIDRs, unique hosts, target-specific fields,
resolvable secrets) live in `installer.config.semantic`, which reports them with positions.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from installer.config.naming import config_alias
from installer.config.secrets import SecretRef
from installer.config.types import (
    CIDR,
    AbsPath,
    Address,
    Domain,
    HostLabel,
    IPNetwork,
    KubeVersion,
    Quantity,
    UserPath,
)

API_VERSION = "dvp.deckhouse.io/v1alpha1"
KIND = "InstallConfig"
LOCALHOST = "localhost"

Target = Literal["embedded", "dkp"]
Role = Literal["master", "worker"]
Profile = Literal["production", "evaluation"]
ReleaseChannel = Literal["Alpha", "Beta", "EarlyAccess", "Stable", "RockSolid"]


def _net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text)


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=config_alias,
        populate_by_name=False,
        use_attribute_docstrings=True,
    )


class BastionSettings(_Model):
    """A jump host every SSH connection goes through (like OpenSSH's ProxyJump)."""

    address: Address
    """IP address or host name of the bastion, as the installer reaches it."""

    port: int = Field(default=22, ge=1, le=65535)
    """SSH port of the bastion."""

    user: str | None = None
    """User on the bastion; defaults to `ssh.user`."""

    private_key_files: list[UserPath] | None = None
    """Private keys for the bastion; default to `ssh.privateKeyFiles`."""

    password: SecretRef | None = None
    """Password for the bastion user, from a file or an environment variable."""


class HostSSH(_Model):
    """Per-host overrides of the `ssh` settings; unset fields inherit them."""

    user: str | None = None
    """SSH user for this host."""

    port: int | None = Field(default=None, ge=1, le=65535)
    """SSH port for this host."""

    private_key_files: list[UserPath] | None = None
    """Private key files for this host."""

    password: SecretRef | None = None
    """SSH password for this host."""

    sudo_password: SecretRef | None = None
    """sudo password for this host."""

    bastion: BastionSettings | None = None
    """Jump host for this host."""


class Host(_Model):
    """One machine of the platform."""

    address: Address
    """IP address or host name the installer connects to; `localhost` runs commands locally
    (no SSH) as the user running `dvp`."""

    name: HostLabel | None = None
    """Name shown in reports; defaults to the address. Must be an RFC 1123 label."""

    role: Role
    """`master` runs the API server (and DVCR); `worker` runs VMs only. Every host runs VMs."""

    ssh: HostSSH | None = None
    """Overrides of the global `ssh` settings for this host."""

    @property
    def display_name(self) -> str:
        return self.name or self.address

    @property
    def is_local(self) -> bool:
        return self.address.lower() == LOCALHOST


class SSHSettings(_Model):
    """How the installer reaches the hosts over SSH."""

    user: str = "root"
    """SSH user; when it is not root, sudo is used for commands that need root."""

    port: int = Field(default=22, ge=1, le=65535)
    """SSH port."""

    private_key_files: list[UserPath] = []
    """Private key files to authenticate with; `~` is expanded. When empty and no agent key
    works, the default keys in `~/.ssh/` (id_ed25519, id_ecdsa, id_rsa) are tried."""

    private_key_passphrase: SecretRef | None = None
    """Passphrase of encrypted private key files."""

    use_agent: bool = True
    """Try the keys of the SSH agent (`SSH_AUTH_SOCK`)."""

    password: SecretRef | None = None
    """SSH password, from a file or an environment variable (never inline)."""

    sudo_password: SecretRef | None = None
    """sudo password of a non-root user; when unset, sudo must not ask for one."""

    bastion: BastionSettings | None = None
    """Jump host for every host (hosts can override it)."""

    known_hosts_file: UserPath = Path("~/.ssh/known_hosts").expanduser()
    """known_hosts file host keys are verified against."""

    accept_new_host_keys: bool = False
    """Accept and record host keys not yet in known_hosts (`--accept-new-host-keys`). A changed
    key is refused regardless."""

    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    """Time allowed to connect, verify the host key and authenticate."""

    command_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    """Time allowed for one remote command."""

    parallelism: int = Field(default=16, ge=1, le=256)
    """Hosts worked on at the same time."""


class RegistrySettings(_Model):
    """Container registry DKP is installed from (target `dkp`)."""

    address: str
    """Registry host and path, e.g. `registry.deckhouse.io/deckhouse/ce`."""

    username: str | None = None
    """Registry user name."""

    password: SecretRef | None = None
    """Registry password or token."""

    ca_file: UserPath | None = None
    """CA bundle for a registry with a private certificate authority."""


class ClusterSettings(_Model):
    """Kubernetes cluster settings (both targets use the pod and service networks)."""

    pod_subnet_cidr: CIDR = Field(default_factory=lambda: _net("10.111.0.0/16"))
    """Pod network."""

    service_subnet_cidr: CIDR = Field(default_factory=lambda: _net("10.222.0.0/16"))
    """Service network."""

    cluster_domain: Domain = "cluster.local"
    """Cluster DNS domain."""

    internal_network_cidrs: list[CIDR] = []
    """Networks the hosts talk to each other on; every host needs an address in one."""

    kubernetes_version: KubeVersion = "Automatic"
    """Kubernetes version (`dkp` only): "1.29" (quoted) or Automatic."""

    release_channel: ReleaseChannel = "Stable"
    """Deckhouse release channel (`dkp` only)."""

    registry: RegistrySettings | None = None
    """Registry with credentials DKP is installed from (`dkp` only)."""


class VirtualizationSettings(_Model):
    """Virtualization settings (DVP's ModuleConfig `virtualization`)."""

    virtual_machine_cidrs: list[CIDR] = Field(min_length=1)
    """Networks VM addresses are allocated from."""

    dvcr_storage_size: Quantity = "50Gi"
    """Space reserved for DVCR, the registry of VM images."""

    vm_storage_directory: AbsPath = Path("/var/lib/dvp/volumes")
    """Directory on every host where VM disks live; its file system needs the free space."""


class MonitoringSettings(_Model):
    """A Prometheus the operator runs on the master host (target `embedded`)."""

    prometheus_rules_dir: AbsPath | None = None
    """Directory that Prometheus loads rule files from (a `rule_files:` glob such as
    `/etc/prometheus/rules.d/*.yaml`); the install writes dvp's alert rules there as
    `dvp.rules.yaml` (what `dvp monitoring rules` prints)."""


class CheckSettings(_Model):
    """Preflight check settings."""

    skip: list[str] = []
    """Names of checks not to run (e.g. `virt.iommu`); their dependents report "blocked"."""

    profile: Profile = "production"
    """`production` applies DKP's published minimums and requires hardware virtualization;
    `evaluation` accepts smaller hosts and software emulation (warnings)."""


class InstallConfig(_Model):
    """The whole install config."""

    api_version: Literal["dvp.deckhouse.io/v1alpha1"]
    """Always `dvp.deckhouse.io/v1alpha1`."""

    kind: Literal["InstallConfig"]
    """Always `InstallConfig`."""

    target: Target = "embedded"
    """`embedded`: dvp's own API server, one host or a few; `dkp`: Deckhouse Kubernetes Platform."""

    ssh: SSHSettings = Field(default_factory=SSHSettings)
    """How hosts are reached."""

    hosts: list[Host] = Field(min_length=1)
    """The machines of the platform."""

    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    """Cluster networks and, for `dkp`, version, channel and registry."""

    virtualization: VirtualizationSettings
    """VM networks and storage."""

    checks: CheckSettings = Field(default_factory=CheckSettings)
    """Preflight check settings."""

    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    """Where the platform's Prometheus alert rules are installed, if anywhere."""

    def platform_cidrs(self) -> list[tuple[str, IPNetwork]]:
        """Networks the platform itself allocates from, with their field paths."""
        out: list[tuple[str, IPNetwork]] = [
            ("cluster.podSubnetCIDR", self.cluster.pod_subnet_cidr),
            ("cluster.serviceSubnetCIDR", self.cluster.service_subnet_cidr),
        ]
        out += [
            (f"virtualization.virtualMachineCIDRs[{i}]", net)
            for i, net in enumerate(self.virtualization.virtual_machine_cidrs)
        ]
        return out
