"""The instance reconciler: makes one InternalVirtualMachineInstance of this node real, then
writes its status once.

One cycle (`reconcile(key)`), level-triggered:
1. read the instance from the informer cache; ignore other nodes' instances;
2. being deleted: stop the domain (gracefully, within the grace period), undefine it, remove its
   seed and local state, release its DHCP bindings, drop our finalizer — never its volumes;
3. parse and check the spec (errors: phase Failed, condition ConfigurationValid);
4. plan the power action (lifecycle.py) and do it: start = prepare disks/seed/network + define
   and start the domain; stop = ACPI power button, destroy after the deadline;
5. build the status from what libvirt and dnsmasq say now and write it if it changed; then
   define a domain just started (make it persistent: `virsh create` then `virsh define`, the
   status first so that Running is reported as soon as libvirt says so), and add
   our finalizer if missing (after the start, to keep the create-to-running path short: a
   domain whose instance vanished meanwhile is removed by the orphan sweep).

Domain lifecycle events from libvirt requeue the instance, so status follows within moments.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

import libvirt

from controlplane.api.instance import InstanceSpec, SpecError, parse_instance
from controlplane.api.internal import INSTANCE_FINALIZER
from controlplane.common.jsoncopy import json_copy
from controlplane.common.kube.client import KubeError
from controlplane.common.kube.controller import Result
from controlplane.common.kube.errors import TemporaryError
from controlplane.common.kube.informer import Key
from controlplane.nodehandler.cloudinit_seed import SeedError
from controlplane.nodehandler.context import INSTANCES, NodeContext, now
from controlplane.nodehandler.domains import DomainStatus
from controlplane.nodehandler.domainxml import guest_agent_state
from controlplane.nodehandler.images import ImageError
from controlplane.nodehandler.instancestatus import Observed, build_status
from controlplane.nodehandler.lifecycle import Action, Plan, plan, plan_deletion
from controlplane.nodehandler.migrations import Migrations
from controlplane.nodehandler.prepare import NotReady, PrepareError, bindings, domain_xml

log = logging.getLogger(__name__)



class InstanceReconciler:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._acpi_pressed: set[tuple[str, str]] = set()  # (uid, deadline) pressed by this process
        # the object as our last status write returned it, by uid: the informer's copy can lag
        # behind it, and acting on a stale status would undo what was just done (e.g. destroy a
        # domain a restart has just started again, because the old shutdown deadline passed)
        self._written: dict[str, dict[str, Any]] = {}
        # uid -> the XML of a domain just started, defined (made persistent) once its status is written
        self._to_define: dict[str, str] = {}
        self.migrations: Migrations | None = None
        """Set by the agent: live migrations of this node's instances (they own the domain meanwhile)."""

    # -- entry point -----------------------------------------------------------------------------
    def reconcile(self, key: Key) -> Result | None:
        ctx = self.ctx
        cached = ctx.instances.get(*key)
        if cached is None or not ctx.mine(cached):
            return None
        obj = json_copy(self._freshest(cached))
        meta = obj["metadata"]
        uid = meta["uid"]
        obs = Observed(spec=None, deleting=bool(meta.get("deletionTimestamp")))
        try:
            obs.spec = parse_instance(obj, vm_net=ctx.network.subnet)
        except SpecError as exc:
            obs.spec_error = str(exc)
        dom = ctx.domains.status(uid)
        if dom is not None and dom.active and not dom.persistent:
            ctx.domains.ensure_persistent(uid)  # started by a handler that died before defining it
        if self.migrations is not None and self.migrations.handle(obj, dom):
            return None
        status = obj.get("status") or {}
        if obs.deleting:
            return self._delete(obj, obs, dom)
        if obs.spec is None:
            self._write_status(obj, Plan(), dom, obs)
            return None
        p = plan(obs.spec, status, dom, now=now(), poll=ctx.config.timings.shutdown_poll_every, node=ctx.node)
        if p.message:
            obs.message = p.message
        elif not ctx.cpu_quota and obs.spec.core_fraction < 100:
            obs.message = (f"coreFraction {obs.spec.core_fraction}% is not enforced: libvirt on this node has no "
                           "cgroup cpu controller")
        if p.flush_first:
            obj = self._write_status(obj, p, dom, obs)
            p.status = {}
        retry: float | None = None
        try:
            dom = self._act(obj, obs.spec, p, dom, obs)
        except NotReady as exc:
            obs.waiting = str(exc)
        except (PrepareError, ImageError, SeedError, libvirt.libvirtError, OSError) as exc:
            obs.start_error = f"starting the domain failed: {exc}"
            log.warning("instance %s/%s: %s", *key, obs.start_error)
            ctx.events.record(obj, type="Warning", reason="StartFailed", message=obs.start_error[:1000])
            retry = ctx.runtime.start_retry
        obj = self._write_status(obj, p, dom, obs)
        self._define(uid)
        ctx.add_finalizer(INSTANCES, obj, INSTANCE_FINALIZER)
        if retry is not None:
            raise TemporaryError(obs.start_error, delay=retry)
        return self._requeue(p, dom, obj)

    # -- acting ----------------------------------------------------------------------------------
    def _act(self, obj: dict[str, Any], spec: InstanceSpec, p: Plan, dom: DomainStatus | None,
             obs: Observed) -> DomainStatus | None:
        ctx = self.ctx
        uid = obj["metadata"]["uid"]
        if p.action is Action.START:
            t0 = time.monotonic()
            xml = domain_xml(ctx, obj, spec)
            t1 = time.monotonic()
            try:
                ctx.domains.start(xml, define=False)
            except libvirt.libvirtError as exc:
                # another worker may have learnt this meanwhile: retry whenever our XML had a quota
                if not (spec.core_fraction < 100 and "cgroup cpu" in str(exc)):
                    raise
                if ctx.cpu_quota:
                    ctx.cpu_quota = False
                    log.warning("libvirt on this node cannot limit CPU time (%s): coreFraction is not enforced", exc)
                xml = domain_xml(ctx, obj, spec)
                ctx.domains.start(xml, define=False)
            self._to_define[uid] = xml
            obs.started_now = True
            log.debug("instance %s/%s: prepared in %.0f ms, started and defined in %.0f ms",
                      obj["metadata"]["namespace"], obj["metadata"]["name"], (t1 - t0) * 1000,
                      (time.monotonic() - t1) * 1000)
            name = ctx.domains.name_for(obj["metadata"]["namespace"], obj["metadata"]["name"])
            ctx.events.record(obj, type="Normal", reason="Started",
                              message=f"domain {name} started ({ctx.decision.domain_type}, {ctx.decision.reason})")
        elif p.action is Action.SHUTDOWN:
            deadline = str(p.status.get("shutdownDeadline") or (obj.get("status") or {}).get("shutdownDeadline"))
            if (uid, deadline) not in self._acpi_pressed:
                ctx.domains.shutdown(uid)
                self._acpi_pressed.add((uid, deadline))
                ctx.events.record(obj, type="Normal", reason="ShutdownRequested",
                                  message="ACPI power button pressed; the domain is destroyed if it is still "
                                          f"running at {deadline}")
        elif p.action is Action.DESTROY:
            ctx.domains.destroy(uid)
            ctx.events.record(obj, type="Normal", reason="Destroyed", message="domain powered off (destroyed)")
        else:
            return dom
        return ctx.domains.status(uid)

    def _requeue(self, p: Plan, dom: DomainStatus | None, obj: dict[str, Any]) -> Result | None:
        t = self.ctx.config.timings
        if p.requeue_after is not None:
            return Result(requeue_after=p.requeue_after)
        if dom is not None and dom.active:
            if (obj.get("status") or {}).get("shutdownDeadline"):
                return Result(requeue_after=t.shutdown_poll_every)
            wanted = {n.get("mac") for n in (obj.get("spec") or {}).get("nics") or [] if n.get("ip")}
            leased = {i.get("mac") for i in (obj.get("status") or {}).get("interfaces") or [] if i.get("ipAddress")}
            return Result(requeue_after=t.ip_poll_every if wanted - leased else t.status_refresh_every)
        return None

    def _define(self, uid: str) -> None:
        """Make a domain this cycle started persistent, now that its status says Running; should
        this fail, the next cycle's `ensure_persistent` does it."""
        xml = self._to_define.pop(uid, None)
        if xml is None:
            return
        try:
            self.ctx.domains.define(xml)
        except libvirt.libvirtError as exc:
            log.warning("instance %s: defining the started domain failed (%s); retried on the next cycle", uid, exc)

    # -- deletion --------------------------------------------------------------------------------
    def _delete(self, obj: dict[str, Any], obs: Observed, dom: DomainStatus | None) -> Result | None:
        ctx = self.ctx
        uid = obj["metadata"]["uid"]
        if dom is not None and dom.active and obs.spec is not None:
            p = plan_deletion(obs.spec, obj.get("status") or {}, dom, now=now(),
                              poll=ctx.config.timings.shutdown_poll_every)
            if p.flush_first:
                obj = self._write_status(obj, p, dom, obs)
                p.status = {}
            dom = self._act(obj, obs.spec, p, dom, obs)
            if dom is not None and dom.active:
                self._write_status(obj, p, dom, obs)
                return Result(requeue_after=ctx.config.timings.shutdown_poll_every)
        elif dom is not None and dom.active:
            ctx.domains.destroy(uid)
        self.cleanup(uid)
        ctx.network.set_bindings(bindings(ctx))
        ctx.remove_finalizer(INSTANCES, obj, INSTANCE_FINALIZER)
        log.info("instance %s/%s deleted: domain, seed and local state removed", obj["metadata"]["namespace"],
                 obj["metadata"]["name"])
        return None

    def cleanup(self, uid: str) -> None:
        """Remove the domain and everything local of instance `uid` (never its volumes)."""
        self.ctx.domains.undefine(uid)
        shutil.rmtree(self.ctx.layout.instance_dir(uid), ignore_errors=True)
        self.ctx.layout.vnc_socket(uid).unlink(missing_ok=True)
        self._acpi_pressed = {k for k in self._acpi_pressed if k[0] != uid}
        self._written.pop(uid, None)
        self._to_define.pop(uid, None)

    # -- status ----------------------------------------------------------------------------------
    def _write_status(self, obj: dict[str, Any], p: Plan, dom: DomainStatus | None, obs: Observed) -> dict[str, Any]:
        ctx = self.ctx
        meta = obj["metadata"]
        active = dom is not None and dom.active
        connected = dom is not None and active and guest_agent_state(dom.xml) == "connected"
        guest = ctx.domains.guest_os_info(meta["uid"]) if connected else {}
        old = obj.get("status") or {}
        new = build_status(old, p.status, dom, obs, node=ctx.node, generation=int(meta.get("generation") or 0),
                           decision=ctx.decision, leases=ctx.network.leases() if active else {},
                           guest_info=guest, now=now())
        if new == old:
            return obj
        obj = {**obj, "status": new}
        try:
            try:
                written = ctx.kube.replace(INSTANCES, obj, subresource="status")
            except KubeError as exc:
                if not exc.conflict:
                    raise
                # the spec or metadata moved on meanwhile (status is only ever written here): the
                # status describes what was just done to the domain and must not be lost
                fresh = ctx.kube.get(INSTANCES, meta["name"], meta["namespace"])
                if fresh["metadata"]["uid"] != meta["uid"]:
                    return obj
                if (fresh.get("status") or {}).get("migration"):  # written by the migration's thread only
                    new = {**new, "migration": fresh["status"]["migration"]}
                written = ctx.kube.replace(INSTANCES, {**fresh, "status": new}, subresource="status")
        except KubeError as exc:
            if exc.not_found:
                return obj
            raise
        self._written[meta["uid"]] = written
        return written

    def _freshest(self, cached: dict[str, Any]) -> dict[str, Any]:
        """The cached object, or our own later status write of it if the cache has not seen it yet
        (resourceVersions of the embedded API server are increasing integers)."""
        uid = cached["metadata"]["uid"]
        mine = self._written.get(uid)
        if mine is None:
            return cached
        try:
            newer = int(mine["metadata"]["resourceVersion"]) > int(cached["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            newer = False
        if newer:
            return mine
        self._written.pop(uid, None)  # the cache caught up
        return cached
