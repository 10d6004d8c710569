"""The upgrade's steps and its rollback, host by host, recorded after every step.

First the bundle is staged on every host at once (copied beside the binary, checksum checked
there, `--version` run): a host that cannot take it stops the upgrade before any host changed,
and the copies overlap instead of adding up. Then per host (the server host first, then each
agent host, one at a time): previous (the running binary kept as `dvp.previous`) → [server]
backup (online datastore copy) / [agent] cordon → replace (atomic rename over `dvp`) → restart
(the host's service) → health → [agent] uncordon. With `--reboot` (`record.reboot`;
installer/upgrade/reboot.py) every host of several is cordoned and drained (its VMs move live,
to upgraded hosts first) before the replace, and rebooted instead of restarted; a single host
is rebooted with its VMs (the plan lists them, `--yes` confirms).

A `--reboot` upgrade of several hosts whose new server migrates the datastore (a higher data
version) runs in two passes. The first replaces and restarts every host as a binary-only upgrade
would: no VM moves, so restoring the datastore's backup stays true to where VMs run. Once every
host is healthy on the new version the upgrade is committed (`record.committed`): the second
pass cordons, drains, reboots and uncordons each host, and a failure there is not rolled back —
the old version cannot read the migrated datastore, and a backup taken before the drains would
put VMs back on nodes they have left. The record is left `reboots-pending`, and the same bundle
finishes it.

Any other failure stops the run and rolls back every host that got past `stage` (a host only
staged has its staged copy removed, nothing more): the previous binary
renamed back, the datastore restored from the backup if the new server may have migrated it
(the server is stopped for that), the service restarted, and health awaited on the old
version; cordoned Nodes are uncordoned. The command then exits non-zero naming host, step and
reason. A record left `running`/`rolling-back` by a killed installer is picked up by the next
run: resumed when given the same bundle, rolled back otherwise (steps already done are
skipped; each step checks the host's files before acting, so repeating one is safe).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shlex
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from controlplane.common.kube.client import NODES, KubeClient
from installer import hostlayout
from installer.upgrade.bundle import Bundle
from installer.upgrade.health import Verdict, node_verdict, running_domains, server_verdict, wait_for
from installer.upgrade.plan import reboot_passes
from installer.upgrade.platform import Platform, PlatformHost
from installer.upgrade.reboot import DEFAULT_REBOOT_COMMAND, REBOOTED, HostStepError, drain_host, reboot_host
from installer.upgrade.records import HostRecord, RecordStore, StepResult, UpgradeRecord, now
from installer.upgrade.remote import RemoteError


@dataclass(frozen=True)
class UpgradeSettings:
    server_timeout: float = 180.0
    """Seconds the restarted server has to become healthy."""
    node_timeout: float = 180.0
    """Seconds a restarted agent has to report Ready on the new version."""
    poll_every: float = 1.0
    drain_timeout: float = 1800.0
    """Seconds the drain of one host may take (`--reboot`)."""
    reboot_timeout: float = 600.0
    """Seconds a rebooted host has to answer SSH again (`--reboot`)."""


class StepFailed(Exception):
    def __init__(self, host: str, step: str, reason: str) -> None:
        super().__init__(f"{host}: step {step}: {reason}")
        self.host, self.step, self.reason = host, step, reason


Reporter = Callable[[str, str, str, str], None]
"""(host, step, state, detail) with state one of start | ok | failed | skipped | wait | info."""


def _staged(record: UpgradeRecord) -> str:
    return f"{hostlayout.BIN_DIR}/.dvp.upgrade-{record.id}"


def _restarted_at(hr: HostRecord, steps: tuple[str, ...] = ("restart", "reboot")) -> dt.datetime | None:
    """When the restart (or reboot) step began (a resumed run waits for a heartbeat newer than that)."""
    step = next((s for s in hr.steps if s.name in steps and s.status == "ok"), None)
    if step is None:
        return None
    return dt.datetime.strptime(step.started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def committed_reason(record: UpgradeRecord) -> str:
    return (f"upgrade {record.id} is committed: every host runs {record.to_version} and the datastore is at data "
            f"version {record.to_data_version}, which {record.from_version} cannot read; finish it with the same "
            "bundle (`dvp upgrade --reboot --bundle ...`) once the cause is fixed")


def backup_path(record_id: str) -> str:
    return f"{hostlayout.BACKUP_DIR}/{record_id}.db"


class Engine:
    def __init__(self, platform: Platform, kube: KubeClient, record: UpgradeRecord, store: RecordStore, *,
                 bundle: Bundle | None, report: Reporter, settings: UpgradeSettings | None = None) -> None:
        self.platform = platform
        self.kube = kube
        self.record = record
        self.store = store
        self.bundle = bundle
        self.report = report
        self.settings = settings or UpgradeSettings()
        self._domains: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        """The record and the reporter, while the stage runs on every host at once."""

    # -- bookkeeping -----------------------------------------------------------------------------
    def _step(self, h: PlatformHost, name: str, fn: Callable[[], str | None]) -> None:
        hr = self.record.host(h.name)
        with self._lock:
            if hr.done(name):
                self.report(h.name, name, "skipped", "done by the interrupted run")
                return
            self.report(h.name, name, "start", "")
        started, t0 = now(), time.monotonic()
        try:
            detail = fn() or ""
        except (RemoteError, StepFailed, OSError) as exc:
            reason = exc.reason if isinstance(exc, StepFailed) else (exc.detail if isinstance(exc, RemoteError) else str(exc))
            with self._lock:
                hr.steps.append(StepResult(name, "failed", started, now(), round(time.monotonic() - t0, 2), reason))
                hr.state = "failed"
                self._save()
                self.report(h.name, name, "failed", reason)
            raise StepFailed(h.name, name, reason) from exc
        with self._lock:
            hr.steps.append(StepResult(name, "ok", started, now(), round(time.monotonic() - t0, 2), detail))
            self._save()
            self.report(h.name, name, "ok", detail)

    def _save(self) -> None:
        self.store.save(self.record)

    # -- forward ---------------------------------------------------------------------------------
    def _passes(self) -> tuple[bool, bool]:
        r = self.record
        return reboot_passes(reboot=r.reboot, hosts=len(self.platform.hosts),
                             migrates=r.to_data_version > r.from_data_version)

    @property
    def two_pass(self) -> bool:
        """Binaries first, then the reboots: a datastore migration together with drains (see above)."""
        return self._passes()[0]

    @property
    def _moves(self) -> bool:
        """This pass drains and reboots each host while upgrading it (a one-pass `--reboot` of several)."""
        return self._passes()[1]

    def run(self) -> None:
        """Upgrade every host; on failure roll back (before the commit) and re-raise `StepFailed`."""
        if self.record.state == "reboots-pending":  # finishing a second pass that failed
            self.record.state, self.record.failure = "running", {}
        if not self.record.committed:
            try:
                self._stage_all()
                for h in self.platform.hosts:
                    self._upgrade_host(h)
            except StepFailed as exc:
                self.record.failure = {"host": exc.host, "step": exc.step, "reason": exc.reason}
                self.rollback()
                raise
        if self.two_pass:
            self._reboot_pass()
        for h in self.platform.hosts:
            self._remove_staged(h)
        self.record.state, self.record.ended = "succeeded", now()
        self._save()

    def _upgrade_host(self, h: PlatformHost) -> None:
        hr = self.record.host(h.name)
        if hr.state == "upgraded":
            self.report(h.name, "host", "skipped", "upgraded by the interrupted run")
            return
        hr.state = "upgrading"
        self._step(h, "previous", lambda: self._keep_previous(h))
        if h.role == "master":
            self._step(h, "backup", lambda: self._backup(h))
        if self._cordons(h):
            self._step(h, "cordon", lambda: self._cordon(h, True))
        if self._moves:
            self._step(h, "drain", lambda: self._drain(h))
        # with a reboot of a single host its VMs restart (confirmed with --yes): nothing to keep running
        single_reboot = self.record.reboot and len(self.platform.hosts) == 1
        self._domains.setdefault(h.name, {} if single_reboot else running_domains(h))
        self._step(h, "replace", lambda: self._replace(h))
        since = dt.datetime.now(dt.UTC)
        if self.record.reboot and not self.two_pass:
            self._step(h, "reboot", lambda: self._reboot(h))
        else:
            self._step(h, "restart", lambda: self._restart(h))
        since = _restarted_at(hr) or since
        self._step(h, "health", lambda: self._health(h, self.record.to_version, since))
        if self._cordons(h):
            self._step(h, "uncordon", lambda: self._cordon(h, False))
        hr.state = "upgraded"
        self._save()

    def _stage_all(self) -> None:
        """The stage step on every host not upgraded yet, all at once; the first host's failure
        (in the hosts' order) is raised once every stage has ended."""
        hosts = [h for h in self.platform.hosts if self.record.host(h.name).state != "upgraded"]

        def stage(h: PlatformHost) -> StepFailed | None:
            try:
                self._step(h, "stage", lambda: self._stage(h))
            except StepFailed as exc:
                return exc
            return None

        with ThreadPoolExecutor(max_workers=max(1, len(hosts)), thread_name_prefix="stage") as pool:
            failed = [exc for exc in pool.map(stage, hosts) if exc is not None]
        if failed:
            raise failed[0]

    def _cordons(self, h: PlatformHost) -> bool:
        """Agents are cordoned while upgraded; with --reboot every host of several (the server's Node too)."""
        return h.role != "master" or self._moves

    # -- the second pass: reboots after the commit -----------------------------------------------
    def _reboot_pass(self) -> None:
        """Commit, then cordon, drain, reboot and uncordon each host; a failure leaves the record
        `reboots-pending` (the hosts stay on the new version) and re-raises `StepFailed`."""
        if not self.record.committed:
            self.record.committed = True
            self._save()
            self.report(self.platform.server.name, "commit", "info",
                        f"every host runs {self.record.to_version} (data version {self.record.to_data_version}): "
                        "from here on a failure is not rolled back")
        try:
            for h in self.platform.hosts:
                self._reboot_host(h)
            for h in self.platform.hosts:  # the drains' preference is done with
                self._label_rebooted(h, on=False)
        except StepFailed as exc:
            self.record.failure = {"host": exc.host, "step": exc.step, "reason": exc.reason}
            self.record.state, self.record.ended = "reboots-pending", now()
            self._save()
            h = next(x for x in self.platform.hosts if x.name == exc.host)
            try:  # the host stays on the new version: schedulable again, as a rollback would leave it
                self.report(h.name, "uncordon", "ok", self._cordon(h, False))
            except StepFailed as again:
                self.report(h.name, "uncordon", "failed", again.reason)
            raise

    def _reboot_host(self, h: PlatformHost) -> None:
        hr = self.record.host(h.name)
        if hr.state == "rebooted":
            self.report(h.name, "host", "skipped", "rebooted by the interrupted run")
            return
        self._step(h, "reboot-cordon", lambda: self._cordon(h, True))
        self._step(h, "drain", lambda: self._drain(h))
        self._domains[h.name] = running_domains(h)  # none, unless --force-stop left some stopped ones
        since = dt.datetime.now(dt.UTC)
        self._step(h, "reboot", lambda: self._reboot(h))
        since = _restarted_at(hr, ("reboot",)) or since
        self._step(h, "reboot-health", lambda: self._health(h, self.record.to_version, since))
        self._step(h, "reboot-uncordon", lambda: f"{self._label_rebooted(h, on=True)}; {self._cordon(h, False)}")
        hr.state = "rebooted"
        self._save()

    def _label_rebooted(self, h: PlatformHost, *, on: bool) -> str:
        """Mark (or unmark) the Node as rebooted by this upgrade: the later drains prefer it."""
        value = self.record.id if on else None
        try:
            self.kube.patch(NODES, h.node, {"metadata": {"labels": {REBOOTED: value}}})
        except Exception as exc:
            raise StepFailed(h.name, "reboot-uncordon" if on else "unlabel", f"Node {h.node}: {exc}") from exc
        return f"Node {h.node} labelled {REBOOTED}={value}" if on else f"Node {h.node} unlabelled"

    def _drain(self, h: PlatformHost) -> str:
        try:
            return drain_host(self.kube, h.node, version=self.record.to_version, timeout=self.settings.drain_timeout,
                              force_stop=self.record.force_stop, poll=self.settings.poll_every,
                              on_wait=lambda d: self.report(h.name, "drain", "wait", d),
                              rebooted=self.record.id if self.record.committed else "")
        except HostStepError as exc:
            raise StepFailed(h.name, "drain", str(exc) + ("" if self.record.force_stop else
                                                          " (--force-stop stops VMs that cannot move)")) from exc

    def _reboot(self, h: PlatformHost) -> str:
        command = self.record.reboot_command or DEFAULT_REBOOT_COMMAND
        try:
            return reboot_host(self.platform, h, command=command, timeout=self.settings.reboot_timeout,
                               poll=self.settings.poll_every, on_wait=lambda d: self.report(h.name, "reboot", "wait", d))
        except HostStepError as exc:
            raise StepFailed(h.name, "reboot", str(exc)) from exc

    def _stage(self, h: PlatformHost) -> str:
        assert self.bundle is not None
        path = _staged(self.record)
        if h.s().sha256(hostlayout.BINARY) == self.record.to_sha256:
            return "the host already runs the bundle"
        if h.s().sha256(path) != self.record.to_sha256:
            h.s().upload(self.bundle.path, path, sha256=self.record.to_sha256)
        out = h.s().root(f"{shlex.quote(path)} --version", what="running the staged bundle", timeout=120).out.strip()
        if not out.endswith(self.record.to_version):
            raise StepFailed(h.name, "stage", f"the staged bundle says {out!r} on this host")
        return f"{path} ({self.bundle.size // 2**20} MiB) checked"

    def _keep_previous(self, h: PlatformHost) -> str:
        current = h.s().sha256(hostlayout.BINARY)
        if current == self.record.from_sha256:
            h.s().root(f"cp -p {hostlayout.BINARY} {hostlayout.BINARY_PREVIOUS}.tmp && "
                       f"mv -f {hostlayout.BINARY_PREVIOUS}.tmp {hostlayout.BINARY_PREVIOUS}",
                       what=f"keeping {hostlayout.BINARY_PREVIOUS}")
            return f"{hostlayout.BINARY_PREVIOUS} = {self.record.from_version}"
        if current == self.record.to_sha256 and h.s().sha256(hostlayout.BINARY_PREVIOUS) == self.record.from_sha256:
            return "kept by the interrupted run"
        raise StepFailed(h.name, "previous", f"{hostlayout.BINARY} is neither {self.record.from_version} "
                         f"(sha256 {self.record.from_sha256[:12]}) nor the bundle: sha256 {str(current)[:12]}; "
                         "was it replaced by hand?")

    def _backup(self, h: PlatformHost) -> str:
        target = backup_path(self.record.id)
        res = h.s().root(f"mkdir -p {hostlayout.BACKUP_DIR} && chmod 700 {hostlayout.BACKUP_DIR} && "
                         f"{hostlayout.BINARY} datastore backup --data-dir {hostlayout.SERVER_DATA_DIR} "
                         f"--to {target} -o json", what="backing up the datastore", timeout=600)
        info = json.loads(res.out)
        self.record.backup = target
        self._save()
        return f"{target}: {info['objects']} objects, data version {info['dataVersion']}"

    def _cordon(self, h: PlatformHost, on: bool) -> str:
        try:
            self.kube.patch(NODES, h.node, {"spec": {"unschedulable": True if on else None}})
        except Exception as exc:
            raise StepFailed(h.name, "cordon" if on else "uncordon", f"Node {h.node}: {exc}") from exc
        return f"Node {h.node} {'unschedulable' if on else 'schedulable'}"

    def _replace(self, h: PlatformHost) -> str:
        if h.role == "master" and self.record.to_data_version > self.record.from_data_version:
            self.record.migrations_ran = True  # from here on the new server may migrate the datastore
            self._save()
        if h.s().sha256(hostlayout.BINARY) == self.record.to_sha256:
            return "already replaced"
        h.s().root(f"mv -f {shlex.quote(_staged(self.record))} {hostlayout.BINARY}", what="replacing the binary")
        return f"{hostlayout.BINARY} = {self.record.to_version}"

    def _restart(self, h: PlatformHost) -> str:
        h.s().root(hostlayout.service_command(h.service, "restart"), what=f"restarting {h.service}", timeout=120)
        return f"{h.service} restarted"

    def _verdict(self, h: PlatformHost, version: str, since: dt.datetime) -> Verdict:
        try:
            if h.role == "master":
                v = server_verdict(self.kube, h, version)
                if not v.ok:
                    return v
            return node_verdict(self.kube, h, version, since=since, domains_before=self._domains.get(h.name, {}))
        except RemoteError as exc:  # a host still rebooting: try a new session next time
            with contextlib.suppress(RemoteError):
                self.platform.reconnect(h)
            return Verdict(False, f"{h.name} does not answer over SSH: {exc.detail[:200]}")

    def _health(self, h: PlatformHost, version: str, since: dt.datetime) -> str:
        timeout = self.settings.server_timeout if h.role == "master" else self.settings.node_timeout
        verdict = wait_for(lambda: self._verdict(h, version, since), timeout=timeout, every=self.settings.poll_every,
                           on_wait=lambda d: self.report(h.name, "health", "wait", d))
        if not verdict.ok:
            raise StepFailed(h.name, "health", f"not healthy within {timeout:.0f} s: {verdict.detail}")
        return verdict.detail

    def _remove_staged(self, h: PlatformHost) -> None:
        """Remove the host's staged copy; a host SSH cannot reach keeps it, said in the progress (a
        later upgrade stages over it), and the run goes on."""
        path = _staged(self.record)
        try:
            h.s().root(f"rm -f {shlex.quote(path)}", what="removing the staged bundle", check=False)
        except RemoteError as exc:
            self.report(h.name, "stage", "skipped", f"{path} left on the host: {exc.detail}")

    # -- rollback --------------------------------------------------------------------------------
    def rollback(self) -> None:
        """Put every changed host back on the old version; raises StepFailed if that fails too, or
        if the upgrade was committed (then it can only be finished)."""
        if self.record.committed:
            raise StepFailed(self.platform.server.name, "rollback", committed_reason(self.record))
        self.record.state = "rolling-back"
        self._save()
        changed = [h for h in self.platform.hosts if self._changed(self.record.host(h.name))]
        for h in self.platform.hosts:
            if h not in changed and any(s.name == "stage" for s in self.record.host(h.name).steps):
                self._remove_staged(h)  # only staged: nothing else to put back
        problems = []
        for h in reversed(changed):  # agents first, the server (and its datastore) last
            try:
                self._rollback_host(h)
            except (StepFailed, RemoteError) as exc:
                problems.append(str(exc))
        self.record.state = "rollback-failed" if problems else "rolled-back"
        self.record.ended = now()
        if problems:
            self.record.failure["rollback"] = "; ".join(problems)
        self._save()
        if problems:
            raise StepFailed(changed[0].name if changed else "-", "rollback", "; ".join(problems))

    @staticmethod
    def _changed(hr: HostRecord) -> bool:
        return any(s.name in ("previous", "cordon", "drain", "replace", "restart", "reboot") for s in hr.steps)

    def _rollback_host(self, h: PlatformHost) -> None:
        hr = self.record.host(h.name)
        since = dt.datetime.now(dt.UTC)

        def restore_binary() -> str:
            if h.s().sha256(hostlayout.BINARY) == self.record.from_sha256:
                return f"{hostlayout.BINARY} is {self.record.from_version} already"
            if h.s().sha256(hostlayout.BINARY_PREVIOUS) != self.record.from_sha256:
                raise StepFailed(h.name, "rollback-binary", f"{hostlayout.BINARY_PREVIOUS} is not "
                                 f"{self.record.from_version}: put the old binary back by hand")
            h.s().root(f"cp -p {hostlayout.BINARY_PREVIOUS} {hostlayout.BINARY}.rollback && "
                       f"mv -f {hostlayout.BINARY}.rollback {hostlayout.BINARY}", what="restoring the binary")
            return f"{hostlayout.BINARY} = {self.record.from_version}"

        def restart() -> str:
            if h.role == "master" and self.record.migrations_ran and self.record.backup:
                h.s().root(hostlayout.service_command(h.service, "stop"), what=f"stopping {h.service}", timeout=120)
                res = h.s().root(f"{hostlayout.BINARY} datastore restore --data-dir {hostlayout.SERVER_DATA_DIR} "
                                 f"--from {self.record.backup} -o json", what="restoring the datastore", timeout=600)
                info = json.loads(res.out)
                h.s().root(hostlayout.service_command(h.service, "start"), what=f"starting {h.service}", timeout=120)
                return f"datastore restored ({info['objects']} objects), {h.service} started"
            h.s().root(hostlayout.service_command(h.service, "restart"), what=f"restarting {h.service}", timeout=120)
            return f"{h.service} restarted"

        self._domains.setdefault(h.name, running_domains(h))
        for name, fn in (("rollback-binary", restore_binary), ("rollback-restart", restart)):
            self._rollback_step(h, hr, name, fn)
        self._rollback_step(h, hr, "rollback-health", lambda: self._health(h, self.record.from_version, since))
        if self._cordons(h):
            self._rollback_step(h, hr, "rollback-uncordon", lambda: self._cordon(h, False))
        self._remove_staged(h)
        hr.state = "rolled-back"
        self._save()

    def _rollback_step(self, h: PlatformHost, hr: HostRecord, name: str, fn: Callable[[], str]) -> None:
        started, t0 = now(), time.monotonic()
        self.report(h.name, name, "start", "")
        try:
            detail = fn()
        except (RemoteError, StepFailed) as exc:
            reason = exc.reason if isinstance(exc, StepFailed) else exc.detail
            hr.steps.append(StepResult(name, "failed", started, now(), round(time.monotonic() - t0, 2), reason))
            self._save()
            self.report(h.name, name, "failed", reason)
            raise StepFailed(h.name, name, reason) from exc
        hr.steps.append(StepResult(name, "ok", started, now(), round(time.monotonic() - t0, 2), detail))
        self._save()
        self.report(h.name, name, "ok", detail)
