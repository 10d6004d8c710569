"""The hosts screen's "test connection": reach one host exactly as the preflight will (same
target resolution, known_hosts verification, bastions, local connection for `localhost`) and
run one harmless command, reporting who we are there.

Runs in a worker thread; returns a one-line outcome, never a secret (SSHError messages are
safe to show by contract of `installer.ssh`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from installer.checks.session import connect
from installer.config.models import InstallConfig
from installer.config.secrets import SecretError
from installer.ssh.bastion import BastionPool
from installer.ssh.errors import HostKeyUnknown, SSHError
from installer.ssh.hostkeys import KnownHosts
from installer.ssh.target import target_for


@dataclass(frozen=True)
class UnknownHostKey:
    """A host key to show the user (type, fingerprint) and, once trusted, write to `known_hosts`."""

    host: str
    key_type: str
    fingerprint: str
    known_hosts: str
    line: str


@dataclass(frozen=True)
class ConnectionOutcome:
    ok: bool
    text: str
    unknown_key: UnknownHostKey | None = None


ConnectionTester = Callable[[InstallConfig, int, bool], ConnectionOutcome]
"""(config, host index, accept new host keys) -> outcome."""


def try_connection(config: InstallConfig, index: int, accept_new_host_keys: bool) -> ConnectionOutcome:
    host = config.hosts[index]
    try:
        target = target_for(config, host, accept_new_host_keys=accept_new_host_keys)
    except SecretError as exc:
        return ConnectionOutcome(False, str(exc))
    known_hosts = KnownHosts(
        config.ssh.known_hosts_file, accept_new=accept_new_host_keys or config.ssh.accept_new_host_keys
    )
    bastions = BastionPool(known_hosts)
    conn = None
    try:
        conn = connect(target, known_hosts=known_hosts, bastions=bastions)
        res = conn.run("id -un", what=f"a test command on {target.name}")
        if not res.ok:
            return ConnectionOutcome(False, f"connected, but `id -un` failed with status {res.exit_status}")
        return ConnectionOutcome(True, f"ok: {res.out.strip()} via {conn.describe()}")
    except HostKeyUnknown as exc:
        key = UnknownHostKey(exc.host, exc.key_type, exc.fingerprint, exc.known_hosts, exc.known_hosts_line)
        return ConnectionOutcome(False, f"unknown host key {exc.key_type} {exc.fingerprint}: trust it to go on", key)
    except SSHError as exc:
        fix = f" — {exc.fix}" if exc.fix else ""
        return ConnectionOutcome(False, f"{exc.message}{fix}")
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        bastions.close()
