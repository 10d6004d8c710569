"""Reaching hosts: SSH with paramiko (key files, agent, password, bastion, known_hosts
verification, timeouts), a local connection for `localhost`, and sudo on top of both.

Used by the preflight checks (`installer.checks`) and, in issue 7, by the install phases. Every
error is an `SSHError` whose message is safe to show: it names the host and never a secret.
"""

from installer.ssh.errors import (
    AuthFailed,
    CommandTimeout,
    ConnectTimeout,
    HostKeyChanged,
    HostKeyUnknown,
    SSHError,
    SudoError,
    Unreachable,
)
from installer.ssh.process import CommandResult, Connection, Process
from installer.ssh.target import Endpoint, SSHTarget, targets_from_config

__all__ = [
    "AuthFailed",
    "CommandResult",
    "CommandTimeout",
    "ConnectTimeout",
    "Connection",
    "Endpoint",
    "HostKeyChanged",
    "HostKeyUnknown",
    "Process",
    "SSHError",
    "SSHTarget",
    "SudoError",
    "Unreachable",
    "targets_from_config",
]
