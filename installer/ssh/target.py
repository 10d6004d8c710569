"""Per-host connection settings, resolved from the install config: the `ssh` section merged
with the host's overrides, secrets read from their files or variables.

An `SSHTarget` is everything needed to reach one host; it holds `Secret`s (printed as `***`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from installer.config.models import BastionSettings, Host, InstallConfig
from installer.config.secrets import Secret, SecretRef


@dataclass(frozen=True)
class Endpoint:
    """An SSH server and the credentials for it."""

    address: str
    port: int
    user: str
    key_files: tuple[Path, ...] = ()
    key_passphrase: Secret | None = None
    use_agent: bool = True
    password: Secret | None = None

    @property
    def known_hosts_name(self) -> str:
        """The name known_hosts uses for this endpoint (OpenSSH's `[host]:port` form)."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def describe(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"

    def methods(self) -> str:
        """The credentials that will be tried, without their values."""
        out = []
        if self.key_files:
            out.append("key files " + ", ".join(str(p) for p in self.key_files))
        if self.use_agent:
            out.append("agent")
        if not self.key_files:
            out.append("default keys in ~/.ssh")
        if self.password is not None:
            out.append("password")
        return ", ".join(out)


@dataclass(frozen=True)
class SSHTarget:
    """One host as the SSH layer sees it."""

    name: str
    host: Host
    endpoint: Endpoint
    local: bool = False
    bastion: Endpoint | None = None
    sudo_password: Secret | None = None
    known_hosts: Path = field(default_factory=lambda: Path("~/.ssh/known_hosts").expanduser())
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 60.0


def _secret(ref: SecretRef | None) -> Secret | None:
    return ref.resolve() if ref is not None else None


def _bastion(settings: BastionSettings, *, user: str, key_files: tuple[Path, ...], config: InstallConfig) -> Endpoint:
    return Endpoint(
        address=settings.address,
        port=settings.port,
        user=settings.user or user,
        key_files=tuple(settings.private_key_files) if settings.private_key_files is not None else key_files,
        key_passphrase=_secret(config.ssh.private_key_passphrase),
        use_agent=config.ssh.use_agent,
        password=_secret(settings.password),
    )


def target_for(config: InstallConfig, host: Host, *, accept_new_host_keys: bool = False) -> SSHTarget:
    """Merge global and per-host SSH settings; raises `SecretError` for an unreadable secret."""
    ssh, over = config.ssh, host.ssh
    user = (over.user if over and over.user else None) or ssh.user
    port = (over.port if over and over.port else None) or ssh.port
    key_files = tuple(over.private_key_files) if over and over.private_key_files is not None else tuple(ssh.private_key_files)
    password = _secret(over.password if over and over.password else ssh.password)
    sudo_password = _secret(over.sudo_password if over and over.sudo_password else ssh.sudo_password)
    bastion_settings = (over.bastion if over and over.bastion else None) or ssh.bastion
    endpoint = Endpoint(
        address=host.address,
        port=port,
        user=user,
        key_files=key_files,
        key_passphrase=_secret(ssh.private_key_passphrase),
        use_agent=ssh.use_agent,
        password=password,
    )
    return SSHTarget(
        name=host.display_name,
        host=host,
        endpoint=endpoint,
        local=host.is_local,
        bastion=None if host.is_local or bastion_settings is None else _bastion(bastion_settings, user=user, key_files=key_files, config=config),
        sudo_password=sudo_password,
        known_hosts=ssh.known_hosts_file,
        accept_new_host_keys=accept_new_host_keys or ssh.accept_new_host_keys,
        connect_timeout=ssh.connect_timeout_seconds,
        command_timeout=ssh.command_timeout_seconds,
    )


def targets_from_config(config: InstallConfig, *, accept_new_host_keys: bool = False) -> list[SSHTarget]:
    return [target_for(config, h, accept_new_host_keys=accept_new_host_keys) for h in config.hosts]
