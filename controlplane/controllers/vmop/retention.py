"""Finished VirtualMachineOperations are deleted, as DVP's vmop garbage collector deletes them:
a finished one (Completed, Failed, Superseded) once `vmop_ttl_seconds` (24 h) have passed since
its creation, and of a VM's finished ones younger than that, all but the `vmop_keep` (10) newest.
Without it every start, stop and migration a user or a GitOps tool ever asked for stays in the
store and in every list of operations.

DVP looks once an hour (a cron source listing every operation). Here each operation's own cycle
decides: a finished one is requeued for the moment its time is up, and the cycle of an operation
that finishes trims its VM's finished ones to the newest `vmop_keep`, so the count holds without
a periodic list. An operation is deleted only once its final status is stored (the cycle that
finishes it writes that status first and comes back), so watchers and `kubectl get` always see
how it ended; one being deleted (a migration's finalizer) is left to its own path.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from controlplane.api.resources import VIRTUAL_MACHINE_OPERATIONS
from controlplane.api.v1alpha2 import VMOPPhase as Phase
from controlplane.common.kube.client import KubeError
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.state import State

FINISHED = frozenset({Phase.COMPLETED, Phase.FAILED, Phase.SUPERSEDED})
SETTLE = 1.0
"""Seconds an operation due for deletion in the cycle that finishes it waits, so its final
status is written (and seen) before it goes."""


def _finished(op: dict[str, Any]) -> bool:
    return (op.get("status") or {}).get("phase") in FINISHED and not (op.get("metadata") or {}).get(
        "deletionTimestamp")


def _created(op: dict[str, Any]) -> float:
    stamp = (op.get("metadata") or {}).get("creationTimestamp") or ""
    try:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()  # not stamped (a unit test's object): as young as can be


class Retention:
    name = "retention"

    def handle(self, state: State) -> None:
        if not _finished(state.changed):
            return
        keep, ttl = state.ctx.settings.vmop_keep, state.ctx.settings.vmop_ttl_seconds
        newest_first = sorted(_finished_of_vm(state), key=_order, reverse=True)
        surplus = newest_first[keep:]
        for op in surplus:
            if op["metadata"]["name"] != state.name:
                _delete(state, op)
        age = time.time() - _created(state.current)
        if age < ttl and all(op["metadata"]["name"] != state.name for op in surplus):
            state.requeue(ttl - age)  # kept for now: back when its time is up
        elif _finished(state.current):
            _delete(state, state.current)  # its final status is stored
        else:
            state.requeue(SETTLE)


def _finished_of_vm(state: State) -> list[dict[str, Any]]:
    """The finished operations of this one's VM, this one as the cycle leaves it included."""
    vm = state.spec.get("virtualMachineName", "")
    others = [op for op in state.lookup(indexes.OPERATIONS_BY_VM, f"{state.namespace}/{vm}")
              if op["metadata"]["name"] != state.name and _finished(op)]
    return [*others, state.changed]


def _order(op: dict[str, Any]) -> tuple[str, str]:
    meta = op["metadata"]
    return meta.get("creationTimestamp") or "", meta["name"]


def _delete(state: State, op: dict[str, Any]) -> None:
    meta = op["metadata"]
    try:
        state.ctx.kube.delete(VIRTUAL_MACHINE_OPERATIONS, meta["name"], meta.get("namespace") or state.namespace,
                              preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
    except KubeError as exc:
        if not (exc.not_found or exc.conflict):
            raise
