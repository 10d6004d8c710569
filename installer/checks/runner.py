"""Run the preflight: every host in parallel (bounded by `ssh.parallelism`), each host's checks
as soon as its facts are in, then the checks that compare hosts.

Progress is reported to a `PreflightListener` from worker threads as it happens — the CLI draws
rich progress bars from it, a Textual screen can post the same events to itself with
`App.call_from_thread`. The result is a `PreflightRun`: the report, plus each host's
`HostState` (facts included) for the install phase to reuse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from installer.checks.catalog import CATALOG
from installer.checks.context import CheckContext, HostState
from installer.checks.model import CheckResult, HostReport, PreflightReport
from installer.checks.registry import CheckSpec, evaluate
from installer.checks.session import Connector, collect
from installer.config.models import InstallConfig
from installer.ssh.bastion import BastionPool
from installer.ssh.errors import SSHError
from installer.ssh.hostkeys import ConfirmHostKey, KnownHosts
from installer.ssh.target import targets_from_config

log = logging.getLogger("dvp.checks")


class PreflightListener(Protocol):
    """Live progress; every method is called from a worker thread."""

    def host_started(self, host: str, total: int) -> None: ...

    def host_phase(self, host: str, phase: str) -> None: ...

    def check_finished(self, host: str, result: CheckResult) -> None: ...

    def host_finished(self, report: HostReport) -> None: ...


class NullListener:
    def host_started(self, host: str, total: int) -> None:
        pass

    def host_phase(self, host: str, phase: str) -> None:
        pass

    def check_finished(self, host: str, result: CheckResult) -> None:
        pass

    def host_finished(self, report: HostReport) -> None:
        pass


@dataclass
class PreflightRun:
    report: PreflightReport
    states: list[HostState]

    def facts(self, host: str) -> object:
        for st in self.states:
            if st.target.name == host:
                return st.facts
        raise KeyError(host)


def run_preflight(
    config: InstallConfig,
    *,
    catalog: Sequence[CheckSpec] = CATALOG,
    skip: Iterable[str] = (),
    accept_new_host_keys: bool = False,
    confirm_host_key: ConfirmHostKey | None = None,
    listener: PreflightListener | None = None,
    keep_connections: bool = False,
    connector: Connector | None = None,
    skip_for: Mapping[str, Iterable[str]] | None = None,
) -> PreflightRun:
    """Check every host of `config`. Connections are closed at the end unless
    `keep_connections` (then the caller closes `state.connection`). `connector` replaces how
    hosts are reached (the benchmark runs the same checks over OpenSSH's client with it).
    `skip_for` skips more checks on some hosts (by address): an install run again skips the
    checks that would see its own platform on the hosts it installed before."""
    events = listener or NullListener()
    skipped = set(config.checks.skip) | set(skip)
    started_wall = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    targets = targets_from_config(config, accept_new_host_keys=accept_new_host_keys)
    known_hosts = KnownHosts(
        config.ssh.known_hosts_file,
        accept_new=accept_new_host_keys or config.ssh.accept_new_host_keys,
        confirm=confirm_host_key,
    )
    bastions = BastionPool(known_hosts)
    host_specs = [s for s in catalog if s.scope == "host"]
    cluster_specs = [s for s in catalog if s.scope == "cluster"]
    states = [HostState(target=t) for t in targets]
    done: list[dict[str, CheckResult]] = [{} for _ in states]
    durations = [0] * len(states)
    data_dir = str(config.virtualization.vm_storage_directory)

    def work(i: int) -> None:
        st = states[i]
        name = st.target.name
        t0 = time.monotonic()
        _safe(events.host_started, name, len(catalog))
        try:
            collect(
                st, known_hosts=known_hosts, bastions=bastions, data_dir=data_dir,
                on_phase=lambda phase: _safe(events.host_phase, name, phase), connector=connector,
            )
        except Exception as exc:  # never let one host's surprise stop the others
            log.exception("unexpected error on %s", name)
            _record_crash(st, exc)
        _safe(events.host_phase, name, "evaluating")
        evaluate(
            host_specs, CheckContext(config, st, states), skip=skipped | set((skip_for or {}).get(st.host.address, ())),
            done=done[i],
            on_result=lambda r: _safe(events.check_finished, name, r),
        )
        durations[i] = int((time.monotonic() - t0) * 1000)

    workers = max(1, min(config.ssh.parallelism, len(states)))
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preflight") as pool:
            list(pool.map(work, range(len(states))))
        hosts = []
        for i, st in enumerate(states):
            evaluate(
                cluster_specs, CheckContext(config, st, states),
                skip=skipped | set((skip_for or {}).get(st.host.address, ())), done=done[i],
                on_result=_forward(events, st.target.name),
            )
            host_report = HostReport(
                name=st.target.name,
                address=st.host.address,
                role=st.host.role,
                connection="local" if st.target.local else "ssh",
                results=[done[i][spec.name] for spec in catalog],
                duration_ms=durations[i],
            )
            hosts.append(host_report)
            _safe(events.host_finished, host_report)
    finally:
        if not keep_connections:
            for st in states:
                if st.connection is not None:
                    with contextlib.suppress(Exception):
                        st.connection.close()
        bastions.close()
    report = PreflightReport(
        target=config.target,
        profile=config.checks.profile,
        started_at=started_wall.isoformat(timespec="seconds").replace("+00:00", "Z"),
        hosts=hosts,
        skipped=sorted(skipped),
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    return PreflightRun(report=report, states=states)



def _safe(fn: object, *args: object) -> None:
    """Call a listener method; a failing listener must not break the run."""
    try:
        fn(*args)  # type: ignore[operator]
    except Exception:
        log.exception("preflight listener failed")


def _forward(events: PreflightListener, host: str) -> Callable[[CheckResult], None]:
    return lambda result: _safe(events.check_finished, host, result)


def _record_crash(st: HostState, exc: Exception) -> None:
    message = f"internal error: {type(exc).__name__}: {exc}"
    if st.connection is None and st.connect_error is None:
        st.connect_error = SSHError(message)
    elif st.probe is None and st.probe_error is None:
        st.probe_error = SSHError(message)
    elif st.facts is None and not st.facts_error:
        st.facts_error = message
