"""Live migration of one running domain to another node's libvirtd, memory and local disks together.

The source node handler drives it (`LiveMigration.run()`, blocking; `cancel()` from any thread):
1. read the domain's plan (migration_plan.py); refuse what cannot move (blockers);
2. open the target's libvirtd (`target_uri`: `qemu+tls://<node address>:16514/system?pkipath=...`
   over the internal network, both ends authenticated by certificates of the platform CA, see
   docs/live-migration.md) and prepare its files
   (migration_target.py): directories, empty copies of the writable disks, read-only files;
3. `migrateToURI3` peer-to-peer (the source libvirtd talks to the target's), live, with
   `VIR_MIGRATE_NON_SHARED_DISK` and `migrate_disks` = the writable disks (QEMU mirrors them over
   NBD while memory is copied), the QEMU stream and NBD on the target's address, the destination
   XML and persistent definition naming the target node, the source undefined on success;
   `force` adds auto-converge (vCPU throttling until memory converges);
4. watch the job meanwhile (progress, a deadline proportional to memory plus disk, no progress
   for too long): past them, or on `cancel()`, `abortJob()`;
5. tell `on_switched_over` the moment the target's libvirtd resumes the guest (its lifecycle event
   RESUMED/MIGRATED, on the connection opened in 2): the guest answers from the target from then
   on, while the job still has the source's Confirm (killing its copy) and the return to go, so
   whoever moves the VM's address (migrations.py: status.nodeName, which routes follow) need not
   wait for those. It is a hint, not the outcome: the outcome still decides (a failure after it
   leaves the source running and the caller moves the address back).

Exactly one domain runs at every moment: libvirt's protocol resumes the target (Finish) before
it kills the source (Confirm), and a failure in any phase leaves the source running — paused
sources are resumed here, just in case. Only after the target's domain is confirmed running is
the outcome `Succeeded`; on failure the files created on the target are removed once it is sure
that no domain of this uid runs there.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import libvirt

from controlplane.nodehandler.domains import Domains
from controlplane.nodehandler.migration_plan import (
    MigrationPlan,
    destination_xml,
    migration_timeout,
    plan_migration,
)
from controlplane.nodehandler.migration_target import TargetFiles, TargetFilesError

log = logging.getLogger(__name__)
LIBVIRT_TLS_PORT = 16514


def target_uri(address: str, *, pki_dir: Path | None = None, port: int = LIBVIRT_TLS_PORT) -> str:
    """The target libvirtd's migration listener: TLS, both ends authenticated by certificates of
    the platform CA; `pki_dir` holds this host's cacert.pem, clientcert.pem and clientkey.pem
    (controlplane/common/libvirt_pki.py). The source libvirtd opens this URI itself (peer-to-peer),
    so the directory must be the same path for it as for the node handler."""
    host = f"[{address}]" if ":" in address else address
    query = f"?pkipath={quote(str(pki_dir), safe='/')}" if pki_dir is not None else ""
    return f"qemu+tls://{host}:{port}/system{query}"


class MigrationResult(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class MigrationReason(StrEnum):
    NOT_MIGRATABLE = "NotMigratable"
    TARGET_UNREACHABLE = "TargetUnreachable"
    TARGET_PREPARATION_FAILED = "TargetPreparationFailed"
    TIMED_OUT = "TimedOut"
    NOT_CONVERGING = "NotConverging"
    CANCELLED = "Cancelled"
    MIGRATION_FAILED = "MigrationFailed"
    COMPLETED = "Completed"
    INTERRUPTED = "Interrupted"
    """The node handler restarted or failed mid-way; its recovery found the VM still on the source."""
    COMPLETED_AFTER_WITHDRAWAL = "CompletedAfterWithdrawal"
    """The request was withdrawn (its VMOP deleted) while the source's handler was away, after the
    switch-over: the domain runs on the target, so the instance goes there (one copy, the running one)."""


@dataclass(frozen=True)
class MigrationTarget:
    node: str
    address: str
    pki_dir: Path | None = None
    """This host's libvirt client certificate directory (Layout.libvirt_pki)."""
    uri: str = ""

    @property
    def libvirt_uri(self) -> str:
        return self.uri or target_uri(self.address, pki_dir=self.pki_dir)


@dataclass(frozen=True)
class MigrationOptions:
    auto_converge: bool = False
    """DVP's `force` (AlwaysForced / PreferForced): throttle vCPUs until memory converges."""
    timeout: float | None = None
    """Overall deadline in seconds; None: proportional to memory plus copied disk."""
    progress_timeout: float = 60.0
    """Abort when the data left to copy has not reached a new low for this long."""
    bandwidth_mib: int = 0
    max_downtime_ms: int = 0
    tls: bool = False
    """`VIR_MIGRATE_TLS`: QEMU's migration stream and the disks' NBD copy encrypted and both ends
    authenticated with the host certificates of the platform CA (Layout.qemu_migration_pki, set
    up by the install on every host); without it they cross the internal network in clear."""
    throttle_initial: int = 40
    """With auto-converge: the vCPU throttle (%) once the guest outpaces the link (QEMU's default 20)."""
    throttle_increment: int = 20
    """... and its step per iteration that still does not converge (QEMU's default 10)."""
    poll_every: float = 0.25
    """How often the job's end is checked (the end itself wakes the watch at once)."""
    stats_every: float = 1.0
    """How often the job's statistics are read (progress, convergence): each read is a libvirt
    query job and a QEMU monitor command, which libvirt's own switch-over steps queue behind."""
    quiet_before_switch_over: float = 2.0
    """No statistics read while the memory left would be sent within this many seconds at the
    current rate (QEMU is about to switch over: a read then lengthens the downtime); reading
    resumes once that time has passed without the job ending."""


@dataclass
class MigrationProgress:
    phase: str = "Preparing"
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    memory_dirty_rate: int = 0
    iteration: int = 0
    memory_remaining: int = 0
    memory_bps: int = 0

    def seconds_to_send(self) -> float | None:
        """How long the memory left takes at the current rate (None before memory is sent)."""
        if self.memory_bps <= 0 or self.memory_remaining <= 0:
            return None
        return self.memory_remaining / self.memory_bps

    @property
    def percent(self) -> int:
        """Of the data to send (memory and copied disks), how much is sent; 100 once completed
        (libvirt's completed statistics need not add up: pages QEMU skips are not counted sent)."""
        if self.phase == "Completed":
            return 100
        return min(100, int(100 * self.data_processed / self.data_total)) if self.data_total else 0


@dataclass
class MigrationOutcome:
    result: MigrationResult
    reason: MigrationReason
    message: str
    source_node: str
    target_node: str
    started: float
    ended: float
    downtime_ms: int | None = None
    copied_disks: tuple[str, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.result is MigrationResult.SUCCEEDED


class _Aborted(Exception):
    def __init__(self, reason: MigrationReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LiveMigration:
    def __init__(self, domains: Domains, uid: str, target: MigrationTarget, options: MigrationOptions | None = None, *,
                 on_progress: Callable[[MigrationProgress], None] | None = None,
                 on_switched_over: Callable[[], None] | None = None) -> None:
        self.domains = domains
        self.uid = uid
        self.target = target
        self.options = options or MigrationOptions()
        self.on_progress = on_progress
        self.on_switched_over = on_switched_over
        """Called once, on libvirt's event thread (it must not block), when the target resumes the guest."""
        self.switched_over_at: float | None = None
        self.progress = MigrationProgress()
        self._cancel = threading.Event()
        self._abort_reason: tuple[MigrationReason, str] | None = None
        self._dom: libvirt.virDomain | None = None
        self._directories: tuple[str, ...] = ()
        self._logs: tuple[str, ...] = ()
        self.limit = 0.0

    # -- control ---------------------------------------------------------------------------------
    def cancel(self, message: str = "the migration was cancelled") -> None:
        self._abort(MigrationReason.CANCELLED, message)

    def _abort(self, reason: MigrationReason, message: str) -> None:
        if self._abort_reason is None:
            self._abort_reason = (reason, message)
        self._cancel.set()
        dom = self._dom
        if dom is not None:
            try:
                dom.abortJob()
            except libvirt.libvirtError as exc:
                log.debug("abortJob: %s", exc)

    def _phase(self, phase: str) -> None:
        self.progress.phase = phase
        if self.on_progress:
            self.on_progress(self.progress)

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> MigrationOutcome:
        started = time.time()
        dom = self.domains.lookup(self.uid)
        if dom is None or not dom.isActive():
            return self._outcome(MigrationResult.FAILED, MigrationReason.NOT_MIGRATABLE,
                                 "the domain is not running on this node", started)
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
        plan = plan_migration(xml)
        if plan.blockers:
            return self._outcome(MigrationResult.FAILED, MigrationReason.NOT_MIGRATABLE, "; ".join(plan.blockers), started)
        try:
            dconn = libvirt.open(self.target.libvirt_uri)
        except libvirt.libvirtError as exc:
            return self._outcome(MigrationResult.FAILED, MigrationReason.TARGET_UNREACHABLE,
                                 f"cannot reach libvirtd of node {self.target.node} at {self.target.libvirt_uri}: "
                                 f"{exc.get_error_message()}", started)
        files = TargetFiles(dconn)
        here = TargetFiles(self.domains.connect())
        watch: int | None = None
        with contextlib.suppress(libvirt.libvirtError):  # without it the caller learns at the end
            watch = dconn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_target_event, None)
        try:
            return self._run(dom, dconn, files, here, xml, plan, started)
        finally:
            files.release()
            here.release()
            with contextlib.suppress(libvirt.libvirtError):
                if watch is not None:
                    dconn.domainEventDeregisterAny(watch)
                dconn.close()

    def _on_target_event(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int,
                         _opaque: object) -> None:
        if (event != libvirt.VIR_DOMAIN_EVENT_RESUMED or detail != libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED
                or self.switched_over_at is not None):
            return
        try:
            if dom.UUIDString() != self.uid:
                return
        except libvirt.libvirtError:
            return
        self.switched_over_at = time.time()
        if self.on_switched_over is not None:
            try:
                self.on_switched_over()
            except Exception:  # a hint only: the outcome still settles it
                log.exception("migration of %s: the switch-over callback failed", self.uid)

    def _run(self, dom: libvirt.virDomain, dconn: libvirt.virConnect, files: TargetFiles, here: TargetFiles, xml: str,
             plan: MigrationPlan, started: float) -> MigrationOutcome:
        try:
            deadline = started + self._set_limit(dom, plan)
            self._phase("PreparingTarget")
            self._directories, self._logs = plan.directories, plan.logs
            for directory in plan.directories:
                files.pool(directory)
            for d in plan.disks:
                if self._cancel.is_set():
                    raise _Aborted(*self._abort_reason or (MigrationReason.CANCELLED, "cancelled"))
                if d.copied:
                    files.create_disk(d.path, int(dom.blockInfo(d.path)[0]), d.format)
                else:
                    files.copy_from(here, d.path, cancelled=self._cancel.is_set)
        except (TargetFilesError, libvirt.libvirtError) as exc:
            self._cleanup_target(dconn, files)
            return self._outcome(MigrationResult.FAILED, MigrationReason.TARGET_PREPARATION_FAILED, str(exc), started)
        except _Aborted as exc:
            self._cleanup_target(dconn, files)
            return self._outcome(MigrationResult.CANCELLED, exc.reason, str(exc), started)
        self._phase("Migrating")
        error = self._migrate(dom, xml, plan, deadline)
        return self._settle(dom, dconn, files, plan, started, error)

    def _migrate(self, dom: libvirt.virDomain, xml: str, plan: MigrationPlan, deadline: float) -> str | None:
        """Run the migration job in a thread and watch it; the job's error text, or None."""
        dest = destination_xml(xml, self.target.node)
        params: dict[str, object] = {
            libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{self._host()}",
            libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: self.target.address,
            libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest,
            libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: dest,
        }
        if plan.copied:
            params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = [d.dev for d in plan.copied]
        if self.options.bandwidth_mib:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = self.options.bandwidth_mib
        flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST
                 | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE | libvirt.VIR_MIGRATE_ABORT_ON_ERROR)
        if plan.copied:
            flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        if self.options.tls:
            flags |= libvirt.VIR_MIGRATE_TLS
        if self.options.auto_converge:
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
            params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = self.options.throttle_initial
            params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = self.options.throttle_increment
        error: list[str] = []

        def job() -> None:
            try:
                dom.migrateToURI3(self.target.libvirt_uri, params, flags)
            except libvirt.libvirtError as exc:
                error.append(exc.get_error_message() or str(exc))

        self._dom = dom
        if self._cancel.is_set():
            return "cancelled before the migration started"
        worker = threading.Thread(target=job, name=f"migrate-{self.uid}", daemon=True)
        worker.start()
        if self.options.max_downtime_ms:
            self._set_downtime(dom, self.options.max_downtime_ms)

        def running() -> bool:
            worker.join(self.options.poll_every)
            return worker.is_alive()

        self._watch(dom, running, deadline)
        return error[0] if error else None

    def resume(self, started: float) -> tuple[MigrationReason, str] | None:
        """Watch a migration job of this domain that libvirtd runs already (started by a node
        handler that was restarted since, at `started`): the same deadline, progress and cancel
        rules as `run()`, until the job ends. Why it was aborted, or None."""
        dom = self.domains.lookup(self.uid)
        if dom is None:
            return None
        self._set_limit(dom, plan_migration(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)), skip_unreadable=True)
        self._dom = dom
        if self._cancel.is_set():  # cancelled before the watch began
            self._abort(*self._abort_reason or (MigrationReason.CANCELLED, "cancelled"))

        def running() -> bool:
            time.sleep(self.options.poll_every)
            try:
                return bool(dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE)
            except libvirt.libvirtError:
                return False  # gone from here: the job ended

        self._watch(dom, running, started + self.limit)
        return self._abort_reason

    def _set_limit(self, dom: libvirt.virDomain, plan: MigrationPlan, *, skip_unreadable: bool = False) -> float:
        """The migration's time limit (`self.limit`): the option, or what its memory and the sizes
        of the disks it copies give; a disk whose size cannot be read counts 0 with `skip_unreadable`."""
        disk_bytes = 0
        for d in plan.copied:
            try:
                disk_bytes += int(dom.blockInfo(d.path)[0])
            except libvirt.libvirtError:
                if not skip_unreadable:
                    raise
        self.limit = self.options.timeout or migration_timeout(plan.memory_bytes, disk_bytes)
        return self.limit

    def _watch(self, dom: libvirt.virDomain, running: Callable[[], bool], deadline: float) -> None:
        """Poll the job while `running()`; abort it past the deadline or when it stops progressing."""
        best, best_at = -1, time.monotonic()
        next_read = 0.0
        while running():
            if time.monotonic() >= next_read:
                self._poll(dom)
                soon = self.progress.seconds_to_send()
                quiet = soon is not None and soon < self.options.quiet_before_switch_over
                next_read = time.monotonic() + (self.options.quiet_before_switch_over if quiet
                                                else self.options.stats_every)
            remaining = self.progress.data_remaining
            if self.progress.data_total and (best < 0 or remaining < best):
                best, best_at = remaining, time.monotonic()
            if time.time() > deadline:
                self._abort(MigrationReason.TIMED_OUT, f"the migration did not finish within its {self.limit:.0f}s "
                            "limit (proportional to memory plus disk size)")
            elif self.progress.data_total and time.monotonic() - best_at > self.options.progress_timeout * (
                    3 if self.options.auto_converge else 1):  # throttling takes iterations to bite
                rate = self.progress.memory_dirty_rate  # 0 until libvirt has measured one
                self._abort(MigrationReason.NOT_CONVERGING,
                            f"no progress for {self.options.progress_timeout:.0f}s: the guest dirties memory faster "
                            + (f"({rate} pages/s) " if rate > 0 else "")
                            + "than the link copies it; use force (auto-converge) to throttle it")
        self._dom = None

    def _host(self) -> str:
        return f"[{self.target.address}]" if ":" in self.target.address else self.target.address

    @staticmethod
    def _set_downtime(dom: libvirt.virDomain, ms: int) -> None:
        for _ in range(20):  # possible only once the job has started
            try:
                dom.migrateSetMaxDowntime(ms, 0)
                return
            except libvirt.libvirtError:
                time.sleep(0.05)

    def _poll(self, dom: libvirt.virDomain) -> None:
        try:
            stats = dom.jobStats(0)
        except libvirt.libvirtError:
            return
        self._take_stats(stats)
        if self.on_progress:
            self.on_progress(self.progress)

    def _take_stats(self, stats: Mapping[str, Any]) -> None:
        p = self.progress
        p.data_total = int(stats.get("data_total", 0))
        p.data_processed = int(stats.get("data_processed", 0))
        p.data_remaining = int(stats.get("data_remaining", 0))
        p.memory_dirty_rate = int(stats.get("memory_dirty_rate", 0))
        p.iteration = int(stats.get("memory_iteration", 0))
        p.memory_remaining = int(stats.get("memory_remaining", 0))
        p.memory_bps = int(stats.get("memory_bps", 0))

    # -- after the job ---------------------------------------------------------------------------
    def _settle(self, dom: libvirt.virDomain, dconn: libvirt.virConnect, files: TargetFiles, plan: MigrationPlan,
                started: float, error: str | None) -> MigrationOutcome:
        target_dom = lookup_domain(dconn, self.uid)
        target_running = target_dom is not None and target_dom.isActive() == 1 and \
            target_dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        source_active = domain_active(dom)
        if error is None and target_running and not source_active:
            stats = _completed_stats(dom) or _completed_stats(target_dom)
            if stats:  # the last report shows what was sent, also when the job ended between two reads
                self._take_stats(stats)
            downtime = stats.get("downtime")
            self._phase("Completed")
            return self._outcome(MigrationResult.SUCCEEDED, MigrationReason.COMPLETED,
                                 f"the domain runs on node {self.target.node}", started,
                                 downtime_ms=int(downtime) if downtime is not None else None,
                                 copied=tuple(d.path for d in plan.copied), stats=stats)
        if source_active:
            resume_if_paused(dom)
            if target_dom is not None and target_dom.isActive():
                # never two: the source still runs, so a target copy (which libvirt should have
                # killed already) goes
                log.warning("migration of %s: the target still had a copy; destroying it", self.uid)
                target_dom.destroy()
            self._cleanup_target(dconn, files)
        reason, message = self._abort_reason or (MigrationReason.MIGRATION_FAILED, error or "the migration failed")
        if self._abort_reason is not None and error:
            message = f"{message} ({error})"
        result = MigrationResult.CANCELLED if reason is MigrationReason.CANCELLED else MigrationResult.FAILED
        if not source_active and not target_running:
            message += "; the domain runs on neither node now"
        self._phase("Failed")
        return self._outcome(result, reason, message, started)

    def _cleanup_target(self, dconn: libvirt.virConnect, files: TargetFiles) -> None:
        target_dom = lookup_domain(dconn, self.uid)
        if target_dom is not None and domain_active(target_dom):
            log.warning("migration of %s failed but a domain of that uid runs on the target: its files stay", self.uid)
            return
        if target_dom is not None:
            with contextlib.suppress(libvirt.libvirtError):
                target_dom.undefine()
        files.remove([log for log in self._logs if self.uid in log])  # the target's serial log, then its directory
        files.remove_directories([d for d in self._directories if self.uid in d])

    def _outcome(self, result: MigrationResult, reason: MigrationReason, message: str, started: float, *,
                 downtime_ms: int | None = None, copied: tuple[str, ...] = (),
                 stats: dict[str, float] | None = None) -> MigrationOutcome:
        return MigrationOutcome(result=result, reason=reason, message=message, source_node=self.domains.node,
                                target_node=self.target.node, started=started, ended=time.time(),
                                downtime_ms=downtime_ms, copied_disks=copied, stats=stats or {})


def lookup_domain(conn: libvirt.virConnect, uid: str) -> libvirt.virDomain | None:
    """The domain with that UUID on that connection, or None."""
    try:
        return conn.lookupByUUIDString(uid)
    except libvirt.libvirtError:
        return None


def domain_active(dom: libvirt.virDomain) -> bool:
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError:
        return False  # undefined meanwhile: gone


def resume_if_paused(dom: libvirt.virDomain) -> None:
    try:
        state, _ = dom.state()
        if state == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
    except libvirt.libvirtError as exc:
        log.warning("resuming the source domain after a failed migration: %s", exc)


COMPLETED_KEPT = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED | libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED


def _completed_stats(dom: libvirt.virDomain | None) -> dict[str, float]:
    """The statistics of the migration job that just completed: on the source while its domain is
    still there, else on the target, which keeps those of the incoming migration (libvirt's
    VIR_DOMAIN_JOB_STATS_COMPLETED); empty when neither has them. libvirt keeps them for the
    next reader (`virsh domjobinfo --completed`, an administrator's): reading does not consume them."""
    if dom is None:
        return {}
    try:
        done = dom.jobStats(COMPLETED_KEPT)
    except libvirt.libvirtError:
        return {}
    return {k: float(v) for k, v in done.items() if isinstance(v, (int, float))}
