"""The node handler's side of instance migrations: runs the requested live migration of an
instance of this node (migration.py) in a thread of its own, reports it in the instance's
`status.migration`, and hands the instance and its volumes over to the target at switch-over.

The instance reconciler asks `Migrations.handle(obj, dom)` first; True means a migration owns
the instance right now and the lifecycle must not act (a domain that has just left for the
target must never be started again here). The order that keeps exactly one domain running and
the API truthful, whatever is killed when:
1. the migration ends (libvirt has started the target and removed the source);
2. `status.migration` says Succeeded (the VMOP and the VM read it) and, in the same write,
   `status.nodeName` names the target: that is where the domain runs now, and every node's routes
   (vmroutes_plan.running_node) follow it at once instead of after the hand-over below and the
   target handler's first status write (each a round trip while the VM's address still led to
   the source, which no longer holds it). `status.nodeName` is written even earlier, alone, when
   the target's libvirtd reports the guest resumed there (migration.py's `on_switched_over`),
   while libvirt still confirms on the source; should the migration fail after all, the failure's
   write moves it back here with the domain;
3. the volumes and the instance are relabelled and their `nodeName` set to the target, so the
   target's handler takes them over (its reconcile sees a running domain: nothing to do);
4. the source's local copies (volume files, instance directory) are removed.
A handler restarted between 2 and 3 finds Succeeded with the instance still here and redoes 3-4.
Every recovery and hand-over is decided on the instance as stored (a GET), not on the informer's
copy, which can trail a hand-over just made; a status write the node authorizer refuses (the
instance is another node's now) is final, and no hand-over follows an outcome not recorded.
A handler restarted mid-migration asks libvirt: still migrating -> it watches that job as its
predecessor did (deadline from the recorded start, progress, a withdrawn request aborts it); the
domain runs on the target -> Succeeded (a copy left here is destroyed); it still runs here ->
Failed, and the target's copy (a paused incoming domain) and files are removed. A migration thread
that fails writes nothing terminal itself: the same recovery decides from what libvirt says, so
a status write lost while the API server is away never makes the lifecycle start a second copy.

Withdrawing `spec.migration` (the VMOP was deleted) cancels a migration in progress (abortJob):
the VM keeps running here. A request withdrawn while this handler was away leaves only
`status.migration` (non-terminal, `sourceNode` this node): the recovery runs from it (the target's
address from its Node): a job still running is aborted, a domain that has moved stays where it
runs and the instance is handed over (Succeeded, CompletedAfterWithdrawal), never started again here.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt

from controlplane.api.internal import NODE_LABEL, node_internal_ip, placed_on
from controlplane.api.migration import TERMINAL, MigrationPhase, MigrationRequest, status_of
from controlplane.common.kube.client import NODES, KubeError
from controlplane.common.kube.informer import Key
from controlplane.nodehandler.context import INSTANCES, VOLUMES, NodeContext, now
from controlplane.nodehandler.domains import DomainStatus
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.lifecycle import parse_ts, ts
from controlplane.nodehandler.migration import (
    LiveMigration,
    MigrationOptions,
    MigrationOutcome,
    MigrationProgress,
    MigrationReason,
    MigrationResult,
    MigrationTarget,
    domain_active,
    lookup_domain,
    resume_if_paused,
)
from controlplane.nodehandler.migration_plan import plan_migration
from controlplane.nodehandler.migration_target import TargetFiles

log = logging.getLogger(__name__)
PROGRESS_EVERY = 1.0
TERMINAL_WRITE_FOR = 60.0
"""Seconds a terminal status write keeps retrying (the API server may be restarting)."""
PHASES = {"Preparing": MigrationPhase.PREPARING, "PreparingTarget": MigrationPhase.PREPARING,
          "Migrating": MigrationPhase.MIGRATING}
IN_FLIGHT = (MigrationPhase.PREPARING, MigrationPhase.MIGRATING)
WITHDRAWN = "the migration request was withdrawn (its VirtualMachineOperation was deleted)"


def migration_options(req: MigrationRequest, layout: Layout) -> MigrationOptions:
    """A request's options on this host: DVP's `force` as auto-converge, its timeout, and the
    stream encrypted where the install set up QEMU's migration certificates."""
    return MigrationOptions(auto_converge=req.auto_converge, timeout=float(req.timeout_seconds) or None,
                            tls=layout.migration_stream_tls())


class _Worker:
    def __init__(self, request: MigrationRequest, migration: LiveMigration) -> None:
        self.request = request
        self.migration = migration
        self.thread: threading.Thread | None = None
        self.address_lock = threading.Lock()
        """Orders the early `status.nodeName` write (at the target's resume) before the terminal one."""
        self.ended = False
        self.address_moved = False


class Migrations:
    def __init__(self, ctx: NodeContext, requeue: Callable[[Key], None]) -> None:
        self.ctx = ctx
        self.requeue = requeue
        self._workers: dict[str, _Worker] = {}
        self._aborted: dict[str, tuple[MigrationReason, str]] = {}
        """uid -> why a resumed watch aborted its job (the recovery reports it)."""
        self._lock = threading.Lock()

    def busy(self, uid: str) -> bool:
        with self._lock:
            return uid in self._workers

    # -- the reconciler's question ---------------------------------------------------------------
    def handle(self, obj: dict[str, Any], dom: DomainStatus | None) -> bool:
        meta = obj["metadata"]
        uid = meta["uid"]
        req = MigrationRequest.parse(obj.get("spec") or {})
        with self._lock:
            worker = self._workers.get(uid)
        if worker is not None:
            if req is None or req.id != worker.request.id or meta.get("deletionTimestamp"):
                worker.migration.cancel(f"{WITHDRAWN}; the VM keeps running on the source")
            return True
        return self._decide(obj, dom, stored=False)

    def _decide(self, obj: dict[str, Any], dom: DomainStatus | None, *, stored: bool) -> bool:
        """`handle` past a running worker. A recovery or a hand-over acts on libvirt and moves the
        instance, so it is decided on the stored object (`stored`), never on the informer's copy
        alone: that copy can trail a hand-over this handler has just made (its migration thread
        wrote Succeeded and moved the instance, the cache still says Migrating), and a recovery
        acting on it would write an old outcome and hand the instance over again, later, when the
        VM may have come back here by another migration."""
        meta = obj["metadata"]
        req = MigrationRequest.parse(obj.get("spec") or {})
        orphan = self._orphan(obj, req)
        if orphan is not None:  # withdrawn while this handler was away: recover from status.migration
            if not stored:
                return self._decide_stored(obj, dom)
            return self._recover(obj, orphan, dom, deleting=bool(meta.get("deletionTimestamp")), withdrawn=True)
        if req is None or req.target_node == self.ctx.node:
            return False
        st = status_of(obj, req.id)
        if meta.get("deletionTimestamp"):  # a migration a restarted handler left: abort it, clean the target
            if st.get("phase") not in IN_FLIGHT:
                return False
            return self._recover(obj, req, dom, deleting=True) if stored else self._decide_stored(obj, dom)
        if st.get("phase") == MigrationPhase.SUCCEEDED:
            if not stored:
                return self._decide_stored(obj, dom)
            self.switch_over(obj, req)
            return True
        if st.get("phase") in TERMINAL:
            return False
        if st.get("phase") in IN_FLIGHT:
            return self._recover(obj, req, dom) if stored else self._decide_stored(obj, dom)
        if dom is None or not dom.active:
            self._write(obj, req, {"phase": MigrationPhase.FAILED, "result": "Failed", "reason": "NotRunning",
                                   "message": "the VM is not running on its node, so it cannot migrate live",
                                   "endTimestamp": ts(now())})
            return False
        self._start(obj, req)
        return True

    def _decide_stored(self, obj: dict[str, Any], dom: DomainStatus | None) -> bool:
        """`_decide` again on the instance as the API server stores it; True (the lifecycle keeps
        off) when it is no longer this node's (handed over: the informer drops it). A failed read
        raises: the reconcile stops before the lifecycle and the controller retries it with backoff."""
        meta = obj["metadata"]
        fresh = self.ctx.kube.get_or_none(INSTANCES, meta["name"], meta["namespace"])
        if fresh is None or fresh["metadata"].get("uid") != meta.get("uid"):
            return True
        if not placed_on(fresh, self.ctx.node):
            log.info("instance %s/%s was handed over to node %s meanwhile: nothing to recover here",
                     meta["namespace"], meta["name"], (fresh.get("spec") or {}).get("nodeName"))
            return True
        return self._decide(fresh, dom, stored=True)

    def _orphan(self, obj: dict[str, Any], req: MigrationRequest | None) -> MigrationRequest | None:
        """The migration from this node that `status.migration` says is in flight while
        `spec.migration` no longer asks for it (withdrawn, or replaced, while this handler was
        away), rebuilt from the status and the target's Node; None when there is none."""
        st = status_of(obj)
        if (st.get("phase") not in IN_FLIGHT or st.get("sourceNode") != self.ctx.node or not st.get("id")
                or not st.get("targetNode") or (req is not None and req.id == st["id"])):
            return None
        target = str(st["targetNode"])
        try:
            node = self.ctx.kube.get_or_none(NODES, target)
        except (KubeError, OSError) as exc:
            log.warning("reading node %s (the target of a withdrawn migration): %s", target, exc)
            node = None
        return MigrationRequest(id=str(st["id"]), target_node=target, target_address=node_internal_ip(node))

    # -- running ---------------------------------------------------------------------------------
    def _start(self, obj: dict[str, Any], req: MigrationRequest) -> None:
        ctx = self.ctx
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        last: list[Any] = [0.0, None]  # when, and in which phase, status.migration was last written

        def progress(p: MigrationProgress) -> None:
            phase = PHASES.get(p.phase)
            if phase is None or (phase == last[1] and time.monotonic() - last[0] < PROGRESS_EVERY):
                return  # a new phase at once, progress within one at most every PROGRESS_EVERY
            last[0], last[1] = time.monotonic(), phase
            self._write(obj, req, {"phase": phase, "progress": p.percent})

        migration = LiveMigration(ctx.domains, obj["metadata"]["uid"],
                                  MigrationTarget(node=req.target_node, address=req.target_address,
                                                  pki_dir=ctx.layout.libvirt_pki), migration_options(req, ctx.layout),
                                  on_progress=progress, on_switched_over=lambda: self._switched(obj, req, worker))
        worker = _Worker(req, migration)
        self._write(obj, req, {"phase": MigrationPhase.PREPARING, "sourceNode": ctx.node, "targetNode": req.target_node,
                               "startTimestamp": ts(now()), "progress": 0,
                               **dict.fromkeys(("endTimestamp", "result", "reason", "message", "downtimeMilliseconds"))})
        # (None: a merge patch removes what the previous migration left)

        def run() -> None:
            try:
                outcome = migration.run()
                self._finish(obj, req, outcome, worker)
            except Exception:  # the recovery (next reconcile) settles it from what libvirt says
                log.exception("migration of %s/%s to %s failed unexpectedly", *key, req.target_node)
            finally:
                with self._lock:
                    self._workers.pop(obj["metadata"]["uid"], None)
                self.requeue(key)

        worker.thread = threading.Thread(target=run, name=f"migration-{key[0]}/{key[1]}", daemon=True)
        with self._lock:
            self._workers[obj["metadata"]["uid"]] = worker
        worker.thread.start()
        log.info("migrating %s/%s to node %s (%s)", *key, req.target_node, req.target_address)

    def _switched(self, obj: dict[str, Any], req: MigrationRequest, worker: _Worker) -> None:
        """The target resumed the guest: its address moves there now (a thread of its own: this
        runs on libvirt's event thread), unless the migration has ended meanwhile."""
        def write() -> None:
            with worker.address_lock:
                if not worker.ended and self._write(obj, req, {}, node=req.target_node) is not None:
                    worker.address_moved = True

        threading.Thread(target=write, name=f"migration-address-{req.id}", daemon=True).start()

    def _finish(self, obj: dict[str, Any], req: MigrationRequest, outcome: MigrationOutcome, worker: _Worker) -> None:
        phase = {MigrationResult.SUCCEEDED: MigrationPhase.SUCCEEDED, MigrationResult.FAILED: MigrationPhase.FAILED,
                 MigrationResult.CANCELLED: MigrationPhase.CANCELLED}[outcome.result]
        update: dict[str, Any] = {"phase": phase, "result": "Succeeded" if outcome.succeeded else "Failed",
                                  "reason": str(outcome.reason), "message": outcome.message,
                                  "endTimestamp": ts(now())}
        if outcome.succeeded:
            update["progress"] = 100
        if outcome.downtime_ms is not None:
            update["downtimeMilliseconds"] = outcome.downtime_ms
        self.ctx.events.record(obj, type="Normal" if outcome.succeeded else "Warning",
                               reason=f"Migration{phase}", message=outcome.message[:1000])
        node = req.target_node if outcome.succeeded else None
        with worker.address_lock:  # an early write of the address, if any, is done: never after this one
            worker.ended = True
            if not outcome.succeeded and worker.address_moved:
                node = self.ctx.node  # the source kept (or got back) the guest: so does its address
        if self._write(obj, req, update, node=node) is None:
            raise RuntimeError(f"the migration ended ({phase}) but its status could not be written")
        if outcome.succeeded:
            self.switch_over(obj, req)

    def _write(self, obj: dict[str, Any], req: MigrationRequest, update: dict[str, Any], *,
               node: str | None = None) -> dict[str, Any] | None:
        """Patch status.migration (and `status.nodeName` = `node`, where the domain runs after a
        switch-over); a terminal phase keeps trying for TERMINAL_WRITE_FOR seconds. None when it
        could not be written."""
        meta = obj["metadata"]
        status: dict[str, Any] = {"migration": {"id": req.id, **{k: str(v) if isinstance(v, MigrationPhase) else v
                                                                 for k, v in update.items()}}}
        if node is not None:
            status["nodeName"] = node
        body = {"status": status}
        until = time.monotonic() + (TERMINAL_WRITE_FOR if update.get("phase") in TERMINAL else 1.0)
        attempt = 0
        while True:
            try:
                return self.ctx.kube.patch(INSTANCES, meta["name"], body, meta["namespace"], subresource="status")
            except KubeError as exc:
                if exc.not_found:
                    return None
                log.warning("writing the migration status of %s/%s: %s", meta["namespace"], meta["name"], exc)
                if exc.forbidden:  # the node authorizer: the instance is no longer this node's (handed over)
                    return None
            except OSError as exc:
                log.warning("writing the migration status of %s/%s: %s", meta["namespace"], meta["name"], exc)
            attempt += 1
            if time.monotonic() > until:
                return None
            time.sleep(min(0.2 * attempt, 2.0))

    # -- switch-over -----------------------------------------------------------------------------
    def switch_over(self, obj: dict[str, Any], req: MigrationRequest) -> None:
        """Hand the instance and its volumes to the target node; remove the local copies."""
        ctx = self.ctx
        ns = obj["metadata"]["namespace"]
        target = req.target_node
        paths: list[Path] = []
        for disk in (obj.get("spec") or {}).get("disks") or []:
            name = (disk.get("volume") or {}).get("name")
            if not name:
                continue
            vol = ctx.volumes.get(ns, name) or ctx.kube.get_or_none(VOLUMES, name, ns)
            if vol is None:
                continue
            paths.append(ctx.layout.volume(ns, name, vol["metadata"]["uid"]))
            if (vol.get("spec") or {}).get("nodeName") != target:
                ctx.kube.patch(VOLUMES, name, {"metadata": {"labels": {NODE_LABEL: target}},
                                               "spec": {"nodeName": target}}, ns)
        ctx.kube.patch(INSTANCES, obj["metadata"]["name"], {"metadata": {"labels": {NODE_LABEL: target}},
                                                            "spec": {"nodeName": target}}, ns)
        uid = obj["metadata"]["uid"]
        if ctx.domains.lookup(uid) is None:
            for path in paths:
                path.unlink(missing_ok=True)
            shutil.rmtree(ctx.layout.instance_dir(uid), ignore_errors=True)
            ctx.layout.vnc_socket(uid).unlink(missing_ok=True)
        log.info("instance %s/%s now runs on node %s", ns, obj["metadata"]["name"], target)

    # -- after a restart mid-migration (or a migration thread that failed) ------------------------
    def _recover(self, obj: dict[str, Any], req: MigrationRequest, dom: DomainStatus | None, *,
                 deleting: bool = False, withdrawn: bool = False) -> bool:
        """`withdrawn`: the request is gone (only status.migration remains): a running job is
        aborted, and a settle reports the withdrawal."""
        uid = obj["metadata"]["uid"]
        here = self.ctx.domains.lookup(uid)
        if here is not None and here.isActive():
            try:
                job = here.jobInfo()[0]
            except libvirt.libvirtError:
                job = libvirt.VIR_DOMAIN_JOB_NONE
            if job != libvirt.VIR_DOMAIN_JOB_NONE:
                self._resume(obj, req, withdrawn=withdrawn)  # libvirtd still migrates it (started before
                return True                                   # this handler restarted)
        return self._settle_with_target(obj, req, here, deleting=deleting, withdrawn=withdrawn)

    def _settle_with_target(self, obj: dict[str, Any], req: MigrationRequest, here: libvirt.virDomain | None, *,
                            deleting: bool = False, withdrawn: bool = False) -> bool:
        uid = obj["metadata"]["uid"]
        target = MigrationTarget(node=req.target_node, address=req.target_address, pki_dir=self.ctx.layout.libvirt_pki)
        try:
            dconn = libvirt.open(target.libvirt_uri)
        except libvirt.libvirtError as exc:
            log.warning("recovering the migration of %s: target unreachable (%s); %s", uid, exc,
                        "deleting anyway (the target's orphan sweep removes its copy)" if deleting else "retrying")
            return not deleting
        try:
            return self._settle(obj, req, dconn, here, withdrawn=withdrawn)
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                dconn.close()

    def _settle(self, obj: dict[str, Any], req: MigrationRequest, dconn: libvirt.virConnect,
                here: libvirt.virDomain | None, *, withdrawn: bool = False) -> bool:
        """No migration job runs: decide from where the domain runs. True while the instance is
        still the migration's (switched over), False once the lifecycle may act again."""
        uid = obj["metadata"]["uid"]
        there = lookup_domain(dconn, uid)
        moved = there is not None and _state(there) == libvirt.VIR_DOMAIN_RUNNING
        aborted = self._aborted.pop(uid, None)
        if moved:
            if here is not None and domain_active(here):
                # libvirt resumed the target (Finish) but the source was not killed (Confirm): the
                # target has the latest state, so the paused source copy goes
                log.warning("migration of %s: the domain runs on %s and a copy here; destroying this one",
                            uid, req.target_node)
                with contextlib.suppress(libvirt.libvirtError):
                    here.destroy()
            reason, why = ((MigrationReason.COMPLETED_AFTER_WITHDRAWAL, f"{WITHDRAWN} after the switch-over; "
                            "the running copy is kept") if withdrawn else
                           (MigrationReason.COMPLETED, "the migration completed while the node handler restarted "
                            "or recovered"))
            if self._write(obj, req, {"phase": MigrationPhase.SUCCEEDED, "result": "Succeeded", "reason": str(reason),
                                      "endTimestamp": ts(now()), "progress": 100,
                                      "message": f"the domain runs on node {req.target_node} ({why})"},
                           node=req.target_node) is None:
                # not recorded (the API server away, or the instance no longer this node's): no
                # hand-over on an unrecorded outcome; the next reconcile decides again
                self.requeue((obj["metadata"]["namespace"], obj["metadata"]["name"]))
                return True
            self.switch_over(obj, req)
            return True
        running_here = here is not None and domain_active(here)
        if running_here:
            resume_if_paused(here)
        if there is not None:  # an incoming copy that never ran (or must not: the source still runs)
            log.warning("migration of %s: removing the target's copy on node %s", uid, req.target_node)
            with contextlib.suppress(libvirt.libvirtError):
                if domain_active(there):
                    there.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                there.undefine()
        if here is not None:
            self._remove_target_copies(dconn, here.XMLDesc(0), uid)
        reason, message = aborted or ((MigrationReason.CANCELLED, WITHDRAWN) if withdrawn else
                                      (MigrationReason.INTERRUPTED, "the migration was interrupted (the node "
                                       "handler restarted or failed during it)"))
        where = f"; the VM keeps running on node {self.ctx.node}" if running_here and aborted is None else ""
        if not running_here and withdrawn and aborted is None:
            where = f"; the VM runs nowhere (neither on node {self.ctx.node} nor on {req.target_node})"
        self._write(obj, req, {"phase": MigrationPhase.CANCELLED if reason is MigrationReason.CANCELLED
                               else MigrationPhase.FAILED, "result": "Failed", "reason": str(reason),
                               "endTimestamp": ts(now()), "message": message + where},
                    node=self.ctx.node if running_here else None)  # back, if a switch-over had moved it
        return False

    def _resume(self, obj: dict[str, Any], req: MigrationRequest, *, withdrawn: bool = False) -> None:
        """Watch the job a previous handler started, with the rules of LiveMigration.run();
        `withdrawn`: its request is gone, abort it at once."""
        uid = obj["metadata"]["uid"]
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        started = parse_ts(status_of(obj, req.id).get("startTimestamp"))
        migration = LiveMigration(self.ctx.domains, uid, MigrationTarget(node=req.target_node, address=req.target_address,
                                                                         pki_dir=self.ctx.layout.libvirt_pki),
                                  migration_options(req, self.ctx.layout))
        worker = _Worker(req, migration)
        if obj["metadata"].get("deletionTimestamp"):
            migration.cancel("the VM was deleted during the migration")
        elif withdrawn:
            migration.cancel(f"{WITHDRAWN} while the node handler was away; the VM keeps running on the source")

        def run() -> None:
            try:
                aborted = migration.resume(started.timestamp() if started else time.time())
                if aborted is not None:
                    with self._lock:
                        self._aborted[uid] = aborted
                # settled here, not by the next reconcile: a withdrawn request leaves it no migration to settle
                self._settle_with_target(obj, req, self.ctx.domains.lookup(uid), withdrawn=withdrawn)
            except Exception:
                log.exception("watching the migration of %s/%s failed", *key)
            finally:
                with self._lock:
                    self._workers.pop(uid, None)
                self.requeue(key)

        worker.thread = threading.Thread(target=run, name=f"migration-watch-{key[0]}/{key[1]}", daemon=True)
        with self._lock:
            self._workers[uid] = worker
        worker.thread.start()
        log.info("migration of %s/%s to node %s still runs in libvirtd: watching it", *key, req.target_node)

    @staticmethod
    def _remove_target_copies(dconn: libvirt.virConnect, xml: str, uid: str) -> None:
        """The copies an interrupted migration made of this domain's disks on the target: the
        writable disks', the instance's own read-only files and its directory (their paths carry
        the volume's or the instance's uid, so nothing else can be there; shared image caches stay)."""
        plan = plan_migration(xml)
        files = TargetFiles(dconn)
        try:
            files.remove([d.path for d in plan.copied] + [p for p in (*(d.path for d in plan.present), *plan.logs)
                                                          if uid in p])
            files.remove_directories([d for d in plan.directories if uid in d])
        finally:
            files.release()


def _state(dom: libvirt.virDomain) -> int:
    try:
        return int(dom.state()[0])
    except libvirt.libvirtError:
        return int(libvirt.VIR_DOMAIN_NOSTATE)
