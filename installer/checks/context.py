"""What a check sees: the install config, the host it judges, that host's state after
connecting and gathering (`HostState`), and every other host's state (for checks across hosts
such as unique host names)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from installer.checks.facts import HostFacts
from installer.config.models import Host, InstallConfig
from installer.ssh.errors import SSHError
from installer.ssh.process import Connection
from installer.ssh.target import SSHTarget


@dataclass(frozen=True)
class Probe:
    """Result of the first command on a host."""

    uid: int
    user: str
    sudo_path: str
    remote_time: float | None
    local_time: float  # the installer's clock at the middle of the round trip
    round_trip: float

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    @property
    def clock_drift(self) -> float | None:
        return None if self.remote_time is None else self.remote_time - self.local_time


@dataclass
class HostState:
    """Everything the session learned about one host (kept for the install phase)."""

    target: SSHTarget
    connection: Connection | None = None
    connection_description: str = ""
    host_key: str = ""
    connect_error: SSHError | None = None
    connect_ms: int = 0
    probe: Probe | None = None
    probe_error: SSHError | None = None
    root_how: str = ""
    root_error: SSHError | None = None
    facts: HostFacts | None = None
    facts_error: str = ""
    facts_ms: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def host(self) -> Host:
        return self.target.host


@dataclass(frozen=True)
class CheckContext:
    config: InstallConfig
    state: HostState
    peers: Sequence[HostState] = ()

    @property
    def host(self) -> Host:
        return self.state.host

    @property
    def facts(self) -> HostFacts:
        assert self.state.facts is not None, "checks that read facts depend on connection.facts"
        return self.state.facts

    @property
    def profile(self) -> str:
        return self.config.checks.profile

    @property
    def target(self) -> str:
        return self.config.target

    @property
    def role(self) -> str:
        return self.host.role
