"""One host's preflight session: connect (SSH or local), probe who we are and the host's clock,
obtain root (sudo when needed), and gather the host's facts with one script.

Everything learned lands in a `HostState`; failures are recorded there, not raised, so every
check can say exactly which step failed and the other hosts carry on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from installer.checks.context import HostState, Probe
from installer.checks.facts import parse_facts
from installer.checks.gather_script import PROBE_COMMAND, gather_script
from installer.ssh.bastion import BastionPool
from installer.ssh.client import SSHConnection
from installer.ssh.errors import SSHError, SudoError
from installer.ssh.hostkeys import KnownHosts
from installer.ssh.local import LocalConnection
from installer.ssh.process import Connection
from installer.ssh.sudo import elevate
from installer.ssh.target import SSHTarget

log = logging.getLogger("dvp.checks")

PhaseCallback = Callable[[str], None]
Connector = Callable[[SSHTarget], Connection]
"""Opens a connection to a target (raising SSHError); the default is `connect()` below."""


def connect(target: SSHTarget, *, known_hosts: KnownHosts, bastions: BastionPool) -> Connection:
    if target.local:
        return LocalConnection(target.name, command_timeout=target.command_timeout)
    return SSHConnection(
        target.name,
        target.endpoint,
        known_hosts=known_hosts,
        connect_timeout=target.connect_timeout,
        command_timeout=target.command_timeout,
        bastion=target.bastion,
        bastions=bastions,
    )


def _parse_probe(text: str, t0: float, t1: float) -> Probe:
    kv = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    try:
        remote: float | None = float(kv.get("time", ""))
    except ValueError:
        remote = None
    return Probe(
        uid=int(kv["uid"]),
        user=kv.get("user", ""),
        sudo_path=kv.get("sudo", ""),
        remote_time=remote,
        local_time=(t0 + t1) / 2,
        round_trip=t1 - t0,
    )


def collect(
    state: HostState,
    *,
    known_hosts: KnownHosts,
    bastions: BastionPool,
    data_dir: str,
    on_phase: PhaseCallback | None = None,
    connector: Connector | None = None,
) -> None:
    """Fill `state`: connection, probe, root, facts (each step only if the previous worked)."""
    target = state.target
    phase = on_phase or (lambda _: None)
    started = time.monotonic()
    phase("connecting")
    try:
        if connector is not None:
            conn = connector(target)
        else:
            conn = connect(target, known_hosts=known_hosts, bastions=bastions)
    except SSHError as exc:
        state.connect_error = exc
        state.connect_ms = int((time.monotonic() - started) * 1000)
        log.info("%s: %s", target.name, exc.message)
        return
    state.connection = conn
    state.connection_description = conn.describe()
    state.host_key = getattr(conn, "host_key", "")
    state.connect_ms = int((time.monotonic() - started) * 1000)

    phase("probing")
    t0 = time.time()
    try:
        res = conn.run(PROBE_COMMAND, what=f"the first command on {target.name}")
        t1 = time.time()
        if not res.ok:
            raise SSHError(f"the first command failed with status {res.exit_status}: {res.err.strip()[:200]}")
        state.probe = probe = _parse_probe(res.out, t0, t1)
    except (SSHError, KeyError, ValueError) as exc:
        state.probe_error = exc if isinstance(exc, SSHError) else SSHError(f"unexpected answer to the first command: {exc}")
        return
    if not probe.is_root and not probe.sudo_path:
        return  # connection.sudo_available reports it; nothing can run as root

    phase("gathering facts")
    t2 = time.monotonic()
    deadline = t2 + target.command_timeout
    try:
        proc, state.root_how = elevate(
            conn, "sh -s", is_root=probe.is_root, user=probe.user,
            sudo_password=target.sudo_password, deadline=deadline,
        )
    except SudoError as exc:
        state.root_error = exc
        return
    except SSHError as exc:
        state.root_error = SudoError(exc.message, reason="error")
        return
    try:
        proc.write(gather_script(data_dir=data_dir).encode())
        proc.close_stdin()
        res = proc.result(deadline, what=f"fact gathering on {target.name}")
    except SSHError as exc:
        proc.kill()
        state.facts_error = exc.message
        return
    state.facts_ms = int((time.monotonic() - t2) * 1000)
    facts = parse_facts(res.out)
    if not facts.complete:
        detail = res.err.strip().splitlines()[-1:] or [f"exit status {res.exit_status}"]
        state.facts_error = f"the fact gathering script stopped early: {detail[0][:200]}"
        return
    state.facts = facts
