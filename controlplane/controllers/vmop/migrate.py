"""Migrate and Evict operations: a running VM moves live to another node (docs/live-migration.md).

The VMOP reconciler calls these for the two types, in its own order:
- `validate`  — the machine runs, is Migratable, its liveMigrationPolicy admits the operation's
                `force`, and some other node can take it (Ready, schedulable, matching the VM's
                and `spec.migrate.nodeSelector`);
- `queue`     — DVP's limits: one outgoing and one incoming migration per node and a cluster cap;
                a migration over them stays Pending (reason MigrationPending, saying which); the
                admissions the cache does not show yet count too (vmop/assumed.py);
- `execute`   — picks the target (the eligible node with the fewest instances), writes the
                instance's `spec.migration` (controlplane/api/migration.py) and holds a finalizer;
- `complete`  — follows the instance's `status.migration` written by the source node handler:
                Succeeded once the instance is on the target; Failed/Cancelled with its reason;
- `cancel`    — a deleted operation still in progress withdraws `spec.migration`: the node
                handler aborts the job and the VM keeps running on the source.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.internal import node_internal_ip
from controlplane.api.migration import (
    DEFAULT_CLUSTER_CAP,
    MigrationPhase,
    MigrationRequest,
    PolicyError,
    auto_converge,
    in_flight,
    queue_reason,
    status_of,
)
from controlplane.api.resources import INSTANCES
from controlplane.api.v1alpha2 import VMCondition as VMC
from controlplane.api.v1alpha2 import VMOPCondition as C
from controlplane.api.v1alpha2 import VMOPPhase as Phase
from controlplane.common.kube.client import NODES
from controlplane.controllers import scheduling
from controlplane.controllers.names import FINALIZER_VMOP
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vmop.assumed import AssumedMigrations

R = C.CompletedReason
TYPES = indexes.MIGRATION_TYPES
REQUEST_VISIBLE_WITHIN = 60.0
"""Seconds after which a request written into the instance must be seen in the cache."""


def _since_signal(state: State) -> float:
    sent = conditions.get(state.status, C.Type.SIGNAL_SENT)
    stamp = (sent or {}).get("lastTransitionTime")
    if not stamp:
        return 0.0
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))).total_seconds()


def _set(state: State, ok: bool, reason: str, message: str) -> None:
    conditions.set_condition(state.status, C.Type.COMPLETED, ok, reason, message, generation=state.generation)


def _fail(state: State, reason: str, message: str) -> None:
    state.status["phase"] = Phase.FAILED
    _set(state, False, reason, message)
    state.ctx.recorder.record(state.changed, type="Warning", reason="OperationFailed", message=message)
    state.stop = True


def targets(state: State, vm: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """Nodes the VM may move to, fewest instances first."""
    vspec = vm.get("spec") or {}
    selectors = [vspec.get("nodeSelector"), (state.spec.get("migrate") or {}).get("nodeSelector")]
    tolerations = list(vspec.get("tolerations") or [])
    nodes = [n for n in state.list(NODES) if n["metadata"]["name"] != source and node_internal_ip(n)
             and scheduling.eligible(n, selectors=selectors, tolerations=tolerations)]
    load = {n["metadata"]["name"]: 0 for n in nodes}
    for inst in state.list(INSTANCES):
        node = (inst.get("spec") or {}).get("nodeName")
        if node in load:
            load[node] += 1
    return sorted(nodes, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))


def validate(state: State, vm: dict[str, Any]) -> None:
    kind = state.spec.get("type")
    phase = (vm.get("status") or {}).get("phase")
    if phase != "Running":
        return _fail(state, R.NOT_APPLICABLE_FOR_VM_PHASE, f"{kind} moves a running machine; this one is {phase}")
    migratable = conditions.get(vm.get("status") or {}, VMC.Type.MIGRATABLE)
    if migratable is not None and migratable.get("status") == "False":
        return _fail(state, R.OPERATION_FAILED, f"the machine cannot migrate live: {migratable.get('message')}")
    try:
        auto_converge((vm.get("spec") or {}).get("liveMigrationPolicy"), state.spec.get("force"))
    except PolicyError as exc:
        return _fail(state, R.NOT_APPLICABLE_FOR_LIVE_MIGRATION_POLICY, str(exc))
    source = (vm.get("status") or {}).get("nodeName") or ""
    if not targets(state, vm, source):
        return _fail(state, R.OPERATION_FAILED,
                     f"{kind}: no other node can take the machine (Ready, schedulable, matching the machine's "
                     "nodeSelector and spec.migrate.nodeSelector)")


def _flights(state: State, assumed: AssumedMigrations | None) -> list[tuple[str, str]]:
    """Migrations in flight: those the cache shows, and those admitted that it does not show yet."""
    insts = state.list(INSTANCES)
    flights = [f for i in insts if (f := in_flight(i)) is not None]
    if assumed is not None:
        seen = [str((((i.get("spec") or {}).get("migration")) or {}).get("id") or "") for i in insts]
        flights += assumed.flights(seen)
    return flights


def queue(state: State, vm: dict[str, Any], assumed: AssumedMigrations | None = None) -> None:
    """Stops the chain (staying Pending) while DVP's limits do not let this migration start."""
    source = (vm.get("status") or {}).get("nodeName") or ""
    choice = targets(state, vm, source)
    flights = _flights(state, assumed)
    waiting = [queue_reason(flights, source, n["metadata"]["name"], cluster_cap=cluster_cap(state)) for n in choice]
    if choice and all(waiting):
        _set(state, False, R.MIGRATION_PENDING, f"queued: {waiting[0]}")
        state.requeue(state.ctx.runtime.requeue_progress)
        state.stop = True


def cluster_cap(state: State) -> int:
    return state.ctx.settings.parallel_migrations or DEFAULT_CLUSTER_CAP


def execute(state: State, vm: dict[str, Any], assumed: AssumedMigrations | None = None) -> None:
    source = (vm.get("status") or {}).get("nodeName") or ""
    with assumed.admitting() if assumed is not None else contextlib.nullcontext():
        flights = _flights(state, assumed)
        choice = [n for n in targets(state, vm, source)
                  if queue_reason(flights, source, n["metadata"]["name"], cluster_cap=cluster_cap(state)) is None]
        if not choice:
            return queue(state, vm, assumed)
        target = choice[0]
        req = MigrationRequest(id=state.uid, target_node=target["metadata"]["name"],
                               target_address=node_internal_ip(target),
                               auto_converge=auto_converge((vm.get("spec") or {}).get("liveMigrationPolicy"),
                                                           state.spec.get("force")))
        state.add_finalizer(FINALIZER_VMOP)
        state.ctx.kube.patch(INSTANCES, vm["metadata"]["name"], {"spec": {"migration": req.to_api()}},
                             state.namespace)
        if assumed is not None:
            assumed.assume(req.id, source, req.target_node)
    state.status["phase"] = Phase.IN_PROGRESS
    conditions.set_condition(state.status, C.Type.SIGNAL_SENT, True, C.SignalSentReason.SIGNAL_SENT_SUCCESS, "",
                             generation=state.generation)
    _set(state, False, R.MIGRATION_PREPARE_TARGET, f"migrating from node {source} to node {req.target_node}")
    state.ctx.recorder.record(state.changed, type="Normal", reason="OperationStarted",
                              message=f"{state.spec['type']} of {vm['metadata']['name']}: {source} -> {req.target_node}"
                                      f"{' (auto-converge)' if req.auto_converge else ''}")
    state.requeue(state.ctx.runtime.requeue_progress)
    state.stop = True  # the cache has not seen the request yet: follow it from the next cycle


def complete(state: State, vm: dict[str, Any] | None) -> None:
    name = state.spec.get("virtualMachineName", "")
    inst = state.get(INSTANCES, name)
    if vm is None or inst is None:
        state.remove_finalizer(FINALIZER_VMOP)
        return _fail(state, R.VIRTUAL_MACHINE_NOT_FOUND, f"VirtualMachine {name!r} was deleted during the migration")
    st = status_of(inst, state.uid)
    req = MigrationRequest.parse(inst.get("spec") or {})
    phase = st.get("phase")
    if phase == MigrationPhase.SUCCEEDED and req is not None and (inst.get("spec") or {}).get("nodeName") == \
            req.target_node:
        state.status["phase"] = Phase.COMPLETED
        _set(state, True, R.OPERATION_COMPLETED, st.get("message") or f"the machine runs on node {req.target_node}")
        state.ctx.recorder.record(state.changed, type="Normal", reason="OperationCompleted",
                                  message=f"{state.spec['type']} of {name} completed: {st.get('message', '')}")
        state.remove_finalizer(FINALIZER_VMOP)
        return None
    if phase in (MigrationPhase.FAILED, MigrationPhase.CANCELLED):
        state.remove_finalizer(FINALIZER_VMOP)
        return _fail(state, R.OPERATION_FAILED, f"{st.get('reason')}: {st.get('message')}")
    if req is None or req.id != state.uid:
        if _since_signal(state) < REQUEST_VISIBLE_WITHIN:
            state.requeue(state.ctx.runtime.requeue_progress)  # our own write, not in the cache yet
            return None
        state.remove_finalizer(FINALIZER_VMOP)
        return _fail(state, R.OPERATION_FAILED, "the migration request was withdrawn from the machine")
    reason = R.MIGRATION_RUNNING if phase == MigrationPhase.MIGRATING else R.MIGRATION_PREPARE_TARGET
    _set(state, False, reason, f"{phase or 'Pending'} {st.get('progress', 0)}%: {st.get('sourceNode') or ''} -> "
                               f"{req.target_node}")
    state.requeue(state.ctx.runtime.requeue_progress)
    return None


def cancel(state: State) -> None:
    """A deleted migration operation: withdraw the request (the node handler aborts the job)."""
    name = state.spec.get("virtualMachineName", "")
    inst = state.get(INSTANCES, name)
    req = MigrationRequest.parse((inst or {}).get("spec") or {})
    if inst is not None and req is not None and req.id == state.uid and \
            status_of(inst, state.uid).get("phase") != MigrationPhase.SUCCEEDED:
        state.ctx.kube.patch(INSTANCES, name, {"spec": {"migration": None}}, state.namespace)
    state.remove_finalizer(FINALIZER_VMOP)
    state.stop = True
