"""Migrate and Evict operations (controlplane/controllers/vmop/migrate.py) on a fake cache: the
target chosen, DVP's limits queueing a migration as Pending, the policy refusing a force, the
instance request written, completion and failure read from the instance's status.migration, and
a deleted operation withdrawing its request, and a second migration from a node waiting while the
first's request is not in the cache yet."""

from __future__ import annotations

import copy
from typing import Any

from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINE_OPERATIONS, VIRTUAL_MACHINES
from controlplane.common.kube.client import NODES
from controlplane.controllers.runtime.state import State
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.vmop import migrate
from controlplane.controllers.vmop.assumed import AssumedMigrations
from controlplane.controllers.vmop.controller import Complete, Execute, Init, Queue, Validate
from tests.unit.controllers.recorders import CollectedEvents


class _Kube:
    def __init__(self, store: dict[Any, dict[str, Any]]) -> None:
        self.store = store
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.patches.append((res.kind, name, body))
        return body


class _Informer:
    def __init__(self, objs: list[dict[str, Any]]) -> None:
        self.objs = objs

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.objs


class _Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(self, obj: Any, **event: Any) -> None:
        self.events.append(event)


class _Runtime:
    requeue_progress = 2.0
    requeue_soon = 0.5


class Ctx:
    def __init__(self, nodes: list[dict[str, Any]], vms: list[dict[str, Any]], insts: list[dict[str, Any]],
                 cap: int = 4) -> None:
        self.objs = {NODES: nodes, VIRTUAL_MACHINES: vms, INSTANCES: insts, VIRTUAL_MACHINE_OPERATIONS: []}
        self.kube = _Kube({})
        self.recorder = _Recorder()
        self.runtime = _Runtime()
        self.settings = PlatformSettings(parallel_migrations=cap)

    def cached(self, res: Any, ns: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.objs.get(res, []) if o["metadata"]["name"] == name), None)

    def informer(self, res: Any) -> _Informer:
        return _Informer(self.objs.get(res, []))


def node(name: str, *, ready: bool = True, cordoned: bool = False, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"unschedulable": cordoned},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "addresses": [{"type": "InternalIP", "address": f"10.0.0.{name[-1]}"}]}}


def vm(name: str = "vm", *, on: str = "n1", phase: str = "Running", policy: str | None = None,
       migratable: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if policy:
        spec["liveMigrationPolicy"] = policy
    conds = [] if migratable else [{"type": "Migratable", "status": "False", "message": "a local ISO"}]
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec,
            "status": {"phase": phase, "nodeName": on, "conditions": conds}}


def inst(name: str = "vm", *, on: str = "n1", migration: dict[str, Any] | None = None,
         status: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": on}
    if migration:
        spec["migration"] = migration
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec,
            "status": {"migration": status} if status else {}}


def op(kind: str = "Evict", *, force: bool | None = None, selector: dict[str, str] | None = None,
       phase: str | None = None, deleting: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": kind, "virtualMachineName": "vm"}
    if force is not None:
        spec["force"] = force
    if selector:
        spec["migrate"] = {"nodeSelector": selector}
    meta: dict[str, Any] = {"name": "op1", "namespace": "ns", "uid": "op-uid", "generation": 1,
                            "creationTimestamp": "2026-01-01T00:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
        meta["finalizers"] = ["virtualization.deckhouse.io/vmop-cleanup"]
    return {"metadata": meta, "spec": spec, "status": {"phase": phase} if phase else {}}


def run(ctx: Ctx, obj: dict[str, Any], assumed: AssumedMigrations | None = None) -> State:
    state = State(ctx, VIRTUAL_MACHINE_OPERATIONS, copy.deepcopy(obj))  # type: ignore[arg-type]
    state.lookup = lambda index, value: [obj]  # type: ignore[method-assign]
    for handler in (Init(), Validate(), Queue(assumed), Execute(assumed), Complete()):
        handler.handle(state)
        if state.stop:
            break
    return state


def completed(state: State) -> dict[str, Any]:
    return next(c for c in state.status["conditions"] if c["type"] == "Completed")


def test_evict_writes_the_request_for_the_least_loaded_ready_node() -> None:
    ctx = Ctx([node("n1"), node("n2"), node("n3", cordoned=True), node("n4", ready=False), node("n5")],
              [vm()], [inst(), inst("other", on="n2")])
    state = run(ctx, op())
    assert state.status["phase"] == "InProgress"
    kind, name, body = ctx.kube.patches[0]
    assert (kind, name) == ("InternalVirtualMachineInstance", "vm")
    assert body["spec"]["migration"] == {"id": "op-uid", "targetNode": "n5", "targetAddress": "10.0.0.5",
                                         "autoConverge": False}
    assert "virtualization.deckhouse.io/vmop-cleanup" in state.meta["finalizers"]


def test_migrate_honours_its_node_selector_and_force() -> None:
    ctx = Ctx([node("n1"), node("n2"), node("n3", labels={"zone": "b"})], [vm()], [inst()])
    run(ctx, op("Migrate", force=True, selector={"zone": "b"}))
    assert ctx.kube.patches[0][2]["spec"]["migration"]["targetNode"] == "n3"
    assert ctx.kube.patches[0][2]["spec"]["migration"]["autoConverge"] is True


def test_always_safe_refuses_force() -> None:
    state = run(Ctx([node("n1"), node("n2")], [vm(policy="AlwaysSafe")], [inst()]), op(force=True))
    assert state.status["phase"] == "Failed"
    assert completed(state)["reason"] == "NotApplicableForLiveMigrationPolicy"


def test_a_non_migratable_machine_fails_with_the_reason() -> None:
    state = run(Ctx([node("n1"), node("n2")], [vm(migratable=False)], [inst()]), op())
    assert state.status["phase"] == "Failed" and "a local ISO" in completed(state)["message"]


def test_a_migration_over_the_limits_stays_pending() -> None:
    busy = inst("busy", on="n1", migration={"id": "x", "targetNode": "n3"})
    ctx = Ctx([node("n1"), node("n2"), node("n3")], [vm()], [inst(), busy])
    state = run(ctx, op())
    assert state.status["phase"] == "Pending" and not ctx.kube.patches
    assert completed(state)["reason"] == "MigrationPending"
    assert "n1 already has an outgoing migration" in completed(state)["message"]


def test_completion_follows_the_instance() -> None:
    req = {"id": "op-uid", "targetNode": "n2", "targetAddress": "10.0.0.2"}
    moving = inst(migration=req, status={"id": "op-uid", "phase": "Migrating", "progress": 40, "sourceNode": "n1"})
    state = run(Ctx([node("n1"), node("n2")], [vm()], [moving]), op(phase="InProgress"))
    assert state.status["phase"] == "InProgress" and completed(state)["reason"] == "MigrationRunning"
    done = inst(on="n2", migration=req, status={"id": "op-uid", "phase": "Succeeded", "message": "on n2"})
    state = run(Ctx([node("n1"), node("n2")], [vm()], [done]), op(phase="InProgress"))
    assert state.status["phase"] == "Completed"
    failed = inst(migration=req, status={"id": "op-uid", "phase": "Failed", "reason": "NotConverging",
                                         "message": "no progress"})
    state = run(Ctx([node("n1"), node("n2")], [vm()], [failed]), op(phase="InProgress"))
    assert state.status["phase"] == "Failed" and "NotConverging: no progress" in completed(state)["message"]


def test_deleting_an_operation_in_progress_withdraws_the_request() -> None:
    req = {"id": "op-uid", "targetNode": "n2"}
    ctx = Ctx([node("n1"), node("n2")], [vm()], [inst(migration=req, status={"id": "op-uid", "phase": "Migrating"})])
    state = run(ctx, op(phase="InProgress", deleting=True))
    assert ctx.kube.patches == [("InternalVirtualMachineInstance", "vm", {"spec": {"migration": None}})]
    assert state.meta["finalizers"] == []


def test_types() -> None:
    assert migrate.TYPES == ("Migrate", "Evict")


def test_a_second_migration_from_the_node_waits_though_the_cache_has_not_seen_the_first() -> None:
    # two Evicts of VMs on n1 reconciled back to back: the first's instance write is not in the
    # cache yet when the second is decided (DVP's limit: one outgoing migration per node)
    ctx = Ctx([node("n1"), node("n2"), node("n3")], [vm(), vm("vm2")], [inst(), inst("vm2")])
    assumed = AssumedMigrations()
    first, second = op(), op()
    second["metadata"].update(name="op2", uid="op2-uid")
    second["spec"]["virtualMachineName"] = "vm2"
    assert run(ctx, first, assumed).status["phase"] == "InProgress"
    state = run(ctx, second, assumed)
    assert state.status["phase"] == "Pending" and len(ctx.kube.patches) == 1
    assert "node n1 already has an outgoing migration" in completed(state)["message"]
    # once the cache shows the first request and its end, the second starts
    ctx.objs[INSTANCES][0]["spec"]["migration"] = ctx.kube.patches[0][2]["spec"]["migration"]
    ctx.objs[INSTANCES][0]["status"] = {"migration": {"id": "op-uid", "phase": "Succeeded"}}
    assert run(ctx, second, assumed).status["phase"] == "InProgress"


def test_an_admission_the_cache_never_shows_stops_counting_after_its_ttl() -> None:
    now = [0.0]
    assumed = AssumedMigrations(ttl=30.0, clock=lambda: now[0])
    assumed.assume("r1", "n1", "n2")
    assert assumed.flights([]) == [("n1", "n2")]
    now[0] = 31.0
    assert assumed.flights([]) == []


def test_the_queued_migrations_index_holds_only_pending_migrations() -> None:
    """A migration that ends wakes the operations of this index: Migrate and Evict not yet admitted,
    never one that runs or ended, nor another type."""
    from controlplane.api.resources import VIRTUAL_MACHINE_OPERATIONS
    from controlplane.common.kube.informer import Informer
    from controlplane.controllers.runtime import indexes
    from controlplane.controllers.runtime.context import Context
    from controlplane.controllers.settings import PlatformSettings

    ops = Informer(None, VIRTUAL_MACHINE_OPERATIONS)  # type: ignore[arg-type]
    ctx = Context(kube=None, settings=PlatformSettings(), recorder=CollectedEvents())
    ctx.informers[VIRTUAL_MACHINE_OPERATIONS] = ops
    for name, kind, phase in (("new", "Evict", None), ("queued", "Migrate", "Pending"), ("running", "Migrate", "InProgress"),
                              ("done", "Evict", "Completed"), ("restart", "Restart", "Pending")):
        ops._apply({"type": "ADDED", "object": {"metadata": {"name": name, "namespace": "ns"},
                                                "spec": {"type": kind, "virtualMachineName": "vm"},
                                                **({"status": {"phase": phase}} if phase else {})}})
    assert sorted(o["metadata"]["name"] for o in indexes.lookup(ctx, indexes.OPERATIONS_QUEUED, "true")) == ["new", "queued"]
    ops._apply({"type": "MODIFIED", "object": {"metadata": {"name": "queued", "namespace": "ns"},
                                               "spec": {"type": "Migrate", "virtualMachineName": "vm"},
                                               "status": {"phase": "InProgress"}}})
    assert [o["metadata"]["name"] for o in indexes.lookup(ctx, indexes.OPERATIONS_QUEUED, "true")] == ["new"]
