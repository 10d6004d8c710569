"""The VirtualMachinePool reconciler: keeps `spec.replicas` VirtualMachines stamped from the
pool's template, and reports them in the pool's status.

One handler: read the members (the VMs the pool controls, by an informer index on the
controller owner reference), fold in what this process created or deleted that the cache
has not shown yet (expectations, as DVP and ReplicaSets keep them: a lagging cache must not
make the pool create or delete twice), ask `plan` what to do, do it, and write the status
(replicas, readyReplicas, updatedReplicas, selector, conditions Available/Progressing/Synced).
The runner writes status only when it changed. Deleting the pool deletes its members through
owner-reference garbage collection; a member's disks are owned by the member and go with it.

Template changes are rolled out in place, as DVP does: every live member on an older template
gets the current template's spec, labels and annotations and the new template-hash label (a
running member applies the new spec at its next restart, its VM saying so); new disk
templates get their disks. status.updatedReplicas and the Synced condition show the rollout.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_DISKS, VIRTUAL_MACHINE_POOLS, VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import Kind
from controlplane.api.v1alpha2 import VMPoolCondition as C
from controlplane.api.vmpool import SCALE_DOWN_TARGETS, scale_down_targets
from controlplane.common.kube.client import KubeError
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, fields_changed, own_key, owners_of_kind
from controlplane.controllers.vmpool import plan as P
from controlplane.controllers.vmpool import retain

EXPECTATION_TTL = 30.0
"""How long a create or delete this process made counts before the cache shows it."""
RECHECK = 2.0
TTL_CHECK = 60.0
"""How often a pool with spare Retain disks beyond `keep` looks for the ones past their ttl."""


def _controller_pool_uid(vm: dict[str, Any]) -> list[str]:
    refs = (vm.get("metadata") or {}).get("ownerReferences") or []
    return [str(r["uid"]) for r in refs if r.get("controller") and r.get("kind") == Kind.VIRTUAL_MACHINE_POOL]


VMS_BY_POOL = indexes.Index(VIRTUAL_MACHINES, "pool", _controller_pool_uid)
DISKS_BY_POOL = indexes.Index(VIRTUAL_DISKS, "pool",
                              lambda d: [u] if (u := ((d.get("metadata") or {}).get("labels") or {})
                                                .get(P.LABEL_POOL_UID)) else [])
"""The pool's disks (its members' and its own Retain disks) by the pool-uid label."""


class Expectations:
    """Per pool, the members this process created or deleted and the cache does not show yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, tuple[str, float]]] = {}

    def expect(self, pool_uid: str, name: str, action: str) -> None:
        with self._lock:
            self._pending.setdefault(pool_uid, {})[name] = (action, time.monotonic() + EXPECTATION_TTL)

    def settle(self, pool_uid: str, cached: dict[str, P.Member]) -> dict[str, str]:
        """Drop what the cache now shows (or what expired); the rest, name -> "create"/"delete"."""
        now = time.monotonic()
        with self._lock:
            pending = self._pending.get(pool_uid, {})
            for name, (action, deadline) in list(pending.items()):
                seen = name in cached
                done = seen if action == "create" else (not seen or cached[name].terminating)
                if done or now > deadline:
                    del pending[name]
            if not pending:
                self._pending.pop(pool_uid, None)
            return {n: a for n, (a, _d) in pending.items()}

    def drop(self, pool_uid: str, name: str) -> None:
        with self._lock:
            self._pending.get(pool_uid, {}).pop(name, None)

    def forget(self, pool_uid: str) -> None:
        with self._lock:
            self._pending.pop(pool_uid, None)


def _pool_owned(disk: dict[str, Any], pool_uid: str) -> bool:
    refs = (disk.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == Kind.VIRTUAL_MACHINE_POOL and r.get("uid") == pool_uid for r in refs)


def _set(state: State, type_: str, ok: bool, reason: str, message: str) -> None:
    conditions.set_condition(state.status, type_, ok, reason, message, generation=state.generation)


class Steps:
    name = "vmpool"

    def __init__(self) -> None:
        self.expectations = Expectations()

    def handle(self, state: State) -> None:
        if state.deleting:  # its members go by garbage collection
            self.expectations.forget(state.uid)
            return
        pool = state.changed
        vms = {vm["metadata"]["name"]: vm for vm in state.lookup(VMS_BY_POOL, state.uid)
               if vm["metadata"].get("namespace", "") == state.namespace}
        cached = {name: P.Member.of(vm) for name, vm in vms.items()}
        desired_hash = P.template_hash(pool)
        desired = int(state.spec.get("replicas") or 0)
        self._report(state, list(cached.values()), desired, desired_hash)
        pending = self.expectations.settle(state.uid, cached)
        members = [P.Member(m.name, m.created, m.terminating or pending.get(m.name) == "delete", m.running,
                            m.template_hash, m.restart_pending) for m in cached.values()]
        members += [P.Member(n, "9999", template_hash=desired_hash) for n, a in pending.items()
                    if a == "create" and n not in cached]
        targets = scale_down_targets(pool)
        step = P.plan(desired, str(state.spec.get("scaleDownPolicy") or ""), members, targets)
        spare = self._retained(state, pool, list(vms.values()))
        done = [t for t in targets if t not in cached or cached[t].terminating]
        if targets and len(done) == len(targets):  # each named replica is gone or going: forget the list
            state.meta.setdefault("annotations", {}).pop(SCALE_DOWN_TARGETS, None)
        for _ in range(step.create):
            self._create(state, pool, spare)
        for name in step.delete:
            self.expectations.expect(state.uid, name, "delete")
            try:
                state.ctx.kube.delete(VIRTUAL_MACHINES, name, state.namespace)
            except KubeError as exc:
                if not exc.not_found:
                    raise
            state.ctx.recorder.record(state.changed, type="Normal", reason="SuccessfulDelete",
                                      message=f"Deleted VirtualMachine {name!r}.")
        behind = 0
        for name, vm in vms.items():  # a member whose disks were not all created (a crash between)
            if cached[name].terminating or pending.get(name) == "delete" or name in step.delete:
                continue
            self._ensure_disks(state, pool, vm)
            if cached[name].template_hash != desired_hash:
                behind += self._roll(state, pool, vm)
        if step.create or step.delete or pending or behind:
            state.requeue(RECHECK)

    def _roll(self, state: State, pool: dict[str, Any], vm: dict[str, Any]) -> int:
        """Bring one member to the current template; 1 when it must be looked at again (a lost race)."""
        try:
            state.ctx.kube.replace(VIRTUAL_MACHINES, P.rolled(pool, vm))
        except KubeError as exc:
            if exc.not_found:
                return 0
            if exc.status == 409:
                return 1
            raise
        state.ctx.recorder.record(state.changed, type="Normal", reason="SuccessfulUpdate",
                                  message=f"Updated VirtualMachine {vm['metadata']['name']!r} to the current template.")
        return 0

    def _retained(self, state: State, pool: dict[str, Any], vms: list[dict[str, Any]]) -> dict[str, list[str]]:
        """The pool's Retain disks: stamp newly free ones, delete the expired; the free ones per
        template, the most recently freed first (what the next members get)."""
        templates = retain.retain_templates(pool)
        if not templates:
            return {}
        disks = [retain.Disk(d["metadata"]["name"], str(d["metadata"].get("labels", {}).get(P.LABEL_DISK_TEMPLATE)),
                             str((d["metadata"].get("annotations") or {}).get(retain.FREED_AT) or ""),
                             bool(d["metadata"].get("deletionTimestamp")))
                 for d in state.lookup(DISKS_BY_POOL, state.uid) if d["metadata"].get("namespace") == state.namespace
                 and _pool_owned(d, state.uid)]
        used = retain.in_use(vms)
        now = dt.datetime.now(dt.UTC)
        out: dict[str, list[str]] = {}
        for name, template in templates.items():
            for disk in retain.free(disks, used, name):
                if not disk.freed_at:
                    self._annotate(state, disk.name, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
            gone = retain.expired(disks, used, template, now)
            for disk_name in gone:
                state.ctx.kube.delete_if_exists(VIRTUAL_DISKS, disk_name, state.namespace)
            out[name] = [d.name for d in retain.free(disks, used, name) if d.name not in gone]
            if (template.get("reclaim") or {}).get("ttl") and len(out[name]) > int(template["reclaim"].get("keep") or 0):
                state.requeue(TTL_CHECK)  # spare disks age: look again for the ones past their ttl
        return out

    def _annotate(self, state: State, disk: str, freed_at: str | None) -> None:
        try:
            state.ctx.kube.patch(VIRTUAL_DISKS, disk, {"metadata": {"annotations": {retain.FREED_AT: freed_at}}},
                                 state.namespace)
        except KubeError as exc:
            if not exc.not_found:
                raise

    def _create(self, state: State, pool: dict[str, Any], spare: dict[str, list[str]]) -> None:
        name = P.new_name(state.name)
        retained: dict[str, str] = {}
        for template_name, template in retain.retain_templates(pool).items():
            free = spare.get(template_name) or []
            if free:  # a warm disk of an earlier member: reattached
                retained[template_name] = free.pop(0)
                self._annotate(state, retained[template_name], None)
                continue
            retained[template_name] = retain.new_disk_name(state.name, template_name)
            state.ctx.kube.create(VIRTUAL_DISKS, P.pool_disk(pool, template, retained[template_name]))
        self.expectations.expect(state.uid, name, "create")
        try:
            vm = state.ctx.kube.create(VIRTUAL_MACHINES, P.member(pool, name, retained))
        except KubeError as exc:
            self.expectations.drop(state.uid, name)  # it will never show up: stop waiting for it
            state.ctx.recorder.record(state.changed, type="Warning", reason="FailedCreate",
                                      message=f"Failed to create a VirtualMachine from the template: {exc}")
            raise
        state.ctx.recorder.record(state.changed, type="Normal", reason="SuccessfulCreate",
                                  message=f"Created VirtualMachine {name!r}.")
        self._ensure_disks(state, pool, vm, fresh=True)

    def _ensure_disks(self, state: State, pool: dict[str, Any], vm: dict[str, Any], *, fresh: bool = False) -> None:
        for disk in P.member_disks(pool, vm):
            if not fresh and state.get(VIRTUAL_DISKS, disk["metadata"]["name"]) is not None:
                continue
            try:
                state.ctx.kube.create(VIRTUAL_DISKS, disk)
            except KubeError as exc:
                if not exc.already_exists:
                    raise

    def _report(self, state: State, members: list[P.Member], desired: int, desired_hash: str) -> None:
        seen = P.Observed.of(members, desired_hash)
        status = state.status
        status.update({"observedGeneration": state.generation, "replicas": seen.replicas,
                       "readyReplicas": seen.ready, "updatedReplicas": seen.updated,
                       "restartPendingReplicas": seen.restart_pending,
                       "desiredTemplateHash": desired_hash, "selector": P.selector(state.changed)})
        ready = seen.ready >= desired
        _set(state, C.Type.AVAILABLE, ready,
             C.AvailableReason.ALL_REPLICAS_READY if ready else C.AvailableReason.INSUFFICIENT_READY_REPLICAS,
             f"All {desired} replicas are ready." if ready else f"Only {seen.ready} of {desired} replicas are ready.")
        moving = seen.replicas != desired
        _set(state, C.Type.PROGRESSING, moving,
             C.ProgressingReason.REPLICAS_PROGRESSING if moving else C.ProgressingReason.POOL_STABLE,
             f"Converging to {desired} replicas (currently {seen.replicas})." if moving
             else "No replica changes in progress.")
        synced = seen.updated >= seen.live
        _set(state, C.Type.SYNCED, synced,
             C.SyncedReason.POOL_SYNCED if synced else C.SyncedReason.ROLLOUT_IN_PROGRESS,
             "All replicas are on the current virtualMachineTemplate." if synced
             else f"{seen.updated} of {seen.live} replicas are on the current virtualMachineTemplate; the others "
                  "are being updated in place.")


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    indexes.register(ctx, VMS_BY_POOL)
    indexes.register(ctx, DISKS_BY_POOL)
    members = fields_changed(("status", "phase"), ("status", "conditions"), ("metadata", "labels"),
                             ("metadata", "ownerReferences"), ("spec", "blockDeviceRefs"))
    return (Reconciler(ctx, VIRTUAL_MACHINE_POOLS, [Steps()], failure_condition=C.Type.PROGRESSING),
            [Watch(VIRTUAL_MACHINE_POOLS, lambda o: [own_key(o)]),
             Watch(VIRTUAL_MACHINES, owners_of_kind(Kind.VIRTUAL_MACHINE_POOL), members)])
