"""The node handler's side of instance migrations: runs the requested live migration of an
instance of this node (migration.py) in a thread of its own, reports it in the instance's
`status.migration`, and hands the instance and its volumes over to the target at switch-over.

The instance reconciler asks `Migrations.handle(obj, dom)` first; True means a migration owns
the instance right now and the lifecycle must not act (a domain that has just left for the
target must never be started again here). The order that keeps exactly one domain running and
the API truthful, whatever is killed when:
1. the migration ends (libvirt has started the target and removed the source);
2. `status.migration` says Succeeded (the VMOP and the VM read it);
3. the volumes and the instance are relabelled and their `nodeName` set to the target, so the
   target's handler takes them over (its reconcile sees a running domain: nothing to do) and the
   VM's status node changes (routes follow it);
4. the source's local copies (volume files, instance directory) are removed.
A handler restarted between 2 and 3 finds Succeeded with the instance still here and redoes 3-4.
A handler restarted mid-migration asks libvirt: still migrating -> wait; the domain runs on the
target -> Succeeded; it still runs here -> Failed, and the target's copies are removed.

Withdrawing `spec.migration` (the VMOP was deleted) cancels a migration in progress (abortJob):
the VM keeps running here.
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

from controlplane.api.internal import NODE_LABEL
from controlplane.api.migration import TERMINAL, MigrationPhase, MigrationRequest, status_of
from controlplane.common.kube.client import KubeError
from controlplane.common.kube.informer import Key
from controlplane.nodehandler.context import INSTANCES, VOLUMES, NodeContext, now
from controlplane.nodehandler.domains import DomainStatus
from controlplane.nodehandler.lifecycle import ts
from controlplane.nodehandler.migration import (
    LiveMigration,
    MigrationOptions,
    MigrationOutcome,
    MigrationProgress,
    MigrationResult,
    MigrationTarget,
)
from controlplane.nodehandler.migration_plan import plan_migration
from controlplane.nodehandler.migration_target import TargetFiles

log = logging.getLogger(__name__)
PROGRESS_EVERY = 1.0
PHASES = {"Preparing": MigrationPhase.PREPARING, "PreparingTarget": MigrationPhase.PREPARING,
          "Migrating": MigrationPhase.MIGRATING}


class _Worker:
    def __init__(self, request: MigrationRequest, migration: LiveMigration) -> None:
        self.request = request
        self.migration = migration
        self.thread: threading.Thread | None = None


class Migrations:
    def __init__(self, ctx: NodeContext, requeue: Callable[[Key], None]) -> None:
        self.ctx = ctx
        self.requeue = requeue
        self._workers: dict[str, _Worker] = {}
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
                worker.migration.cancel("the migration request was withdrawn (its VirtualMachineOperation was "
                                        "deleted); the VM keeps running on the source")
            return True
        if req is None or req.target_node == self.ctx.node or meta.get("deletionTimestamp"):
            return False
        st = status_of(obj, req.id)
        if st.get("phase") == MigrationPhase.SUCCEEDED:
            self.switch_over(obj, req)
            return True
        if st.get("phase") in TERMINAL:
            return False
        if st.get("phase") in (MigrationPhase.PREPARING, MigrationPhase.MIGRATING):
            return self._recover(obj, req, dom)
        if dom is None or not dom.active:
            self._write(obj, req, {"phase": MigrationPhase.FAILED, "result": "Failed", "reason": "NotRunning",
                                   "message": "the VM is not running on its node, so it cannot migrate live",
                                   "endTimestamp": ts(now())})
            return False
        self._start(obj, req)
        return True

    # -- running ---------------------------------------------------------------------------------
    def _start(self, obj: dict[str, Any], req: MigrationRequest) -> None:
        ctx = self.ctx
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        last = [0.0]

        def progress(p: MigrationProgress) -> None:
            if time.monotonic() - last[0] < PROGRESS_EVERY and p.phase not in PHASES:
                return
            last[0] = time.monotonic()
            phase = PHASES.get(p.phase)
            if phase is not None:
                self._write(obj, req, {"phase": phase, "progress": p.percent})

        options = MigrationOptions(auto_converge=req.auto_converge, timeout=float(req.timeout_seconds) or None)
        migration = LiveMigration(ctx.domains, obj["metadata"]["uid"],
                                  MigrationTarget(node=req.target_node, address=req.target_address,
                                                  pki_dir=ctx.layout.libvirt_pki), options,
                                  on_progress=progress)
        worker = _Worker(req, migration)
        self._write(obj, req, {"phase": MigrationPhase.PREPARING, "sourceNode": ctx.node, "targetNode": req.target_node,
                               "startTimestamp": ts(now()), "progress": 0,
                               **dict.fromkeys(("endTimestamp", "result", "reason", "message", "downtimeMilliseconds"))})
        # (None: a merge patch removes what the previous migration left)

        def run() -> None:
            try:
                outcome = migration.run()
                self._finish(obj, req, outcome)
            except Exception:
                log.exception("migration of %s/%s to %s failed unexpectedly", *key, req.target_node)
                self._write(obj, req, {"phase": MigrationPhase.FAILED, "result": "Failed", "reason": "MigrationFailed",
                                       "message": "the node handler failed while migrating (see its log)",
                                       "endTimestamp": ts(now())})
            finally:
                with self._lock:
                    self._workers.pop(obj["metadata"]["uid"], None)
                self.requeue(key)

        worker.thread = threading.Thread(target=run, name=f"migration-{key[0]}/{key[1]}", daemon=True)
        with self._lock:
            self._workers[obj["metadata"]["uid"]] = worker
        worker.thread.start()
        log.info("migrating %s/%s to node %s (%s)", *key, req.target_node, req.target_address)

    def _finish(self, obj: dict[str, Any], req: MigrationRequest, outcome: MigrationOutcome) -> None:
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
        self._write(obj, req, update)
        if outcome.succeeded:
            self.switch_over(obj, req)

    def _write(self, obj: dict[str, Any], req: MigrationRequest, update: dict[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        body = {"status": {"migration": {"id": req.id, **{k: str(v) if isinstance(v, MigrationPhase) else v
                                                             for k, v in update.items()}}}}
        for attempt in range(5):
            try:
                return self.ctx.kube.patch(INSTANCES, meta["name"], body, meta["namespace"], subresource="status")
            except KubeError as exc:
                if exc.not_found:
                    return None
                log.warning("writing the migration status of %s/%s: %s", meta["namespace"], meta["name"], exc)
                time.sleep(0.2 * (attempt + 1))
        return None

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

    # -- after a restart mid-migration -----------------------------------------------------------
    def _recover(self, obj: dict[str, Any], req: MigrationRequest, dom: DomainStatus | None) -> bool:
        uid = obj["metadata"]["uid"]
        here = self.ctx.domains.lookup(uid)
        if here is not None and here.isActive():
            try:
                job = here.jobInfo()[0]
            except libvirt.libvirtError:
                job = libvirt.VIR_DOMAIN_JOB_NONE
            if job != libvirt.VIR_DOMAIN_JOB_NONE:
                return True  # libvirtd still migrates it (started by this handler before it restarted)
        target = MigrationTarget(node=req.target_node, address=req.target_address, pki_dir=self.ctx.layout.libvirt_pki)
        try:
            dconn = libvirt.open(target.libvirt_uri)
        except libvirt.libvirtError as exc:
            log.warning("recovering the migration of %s: target unreachable (%s); retrying", uid, exc)
            return True
        try:
            try:
                there = dconn.lookupByUUIDString(uid)
                moved = bool(there.isActive())
            except libvirt.libvirtError:
                there, moved = None, False
            if moved:
                self._write(obj, req, {"phase": MigrationPhase.SUCCEEDED, "result": "Succeeded",
                                                 "reason": "Completed", "endTimestamp": ts(now()),
                                                 "message": f"the domain runs on node {req.target_node} (the "
                                                            "migration completed while the node handler restarted)"})
                self.switch_over(obj, req)
                return True
            if dom is not None and dom.active and there is None:
                self._remove_target_copies(dconn, dom.xml)
            self._write(obj, req, {"phase": MigrationPhase.FAILED, "result": "Failed", "reason": "Interrupted",
                                   "endTimestamp": ts(now()),
                                   "message": "the node handler restarted during the migration; the VM keeps running "
                                              f"on node {self.ctx.node}" if dom is not None and dom.active else
                                              "the node handler restarted during the migration"})
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                dconn.close()
        return False

    @staticmethod
    def _remove_target_copies(dconn: libvirt.virConnect, xml: str) -> None:
        """The copies an interrupted migration made of this domain's writable disks on the target
        (their paths carry the volume's uid, so nothing else can be there)."""
        files = TargetFiles(dconn)
        try:
            files.remove([disk.path for disk in plan_migration(xml).copied])
        finally:
            files.release()
