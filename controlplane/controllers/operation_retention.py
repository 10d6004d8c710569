"""Finished operations are deleted, as DVP's vmop and vmsop garbage collectors delete them: a
finished VirtualMachineOperation (Completed, Failed, Superseded) or VirtualMachineSnapshotOperation
(Completed, Failed) once `operation_ttl_seconds` (24 h) have passed since its creation, and of the
younger finished ones of a VM (of a snapshot), all but the `operations_kept` (10) newest. Without
it every start, stop, migration and clone a user or a GitOps tool ever asked for stays in the
store and in every list of operations.

DVP looks once an hour (a cron source listing every operation). Here each operation's own cycle
decides: a finished one is requeued for the moment its time is up, and the cycle of an operation
that finishes trims its group's finished ones to the newest `operations_kept`, so the count holds
without a periodic list. An operation is deleted only once its final status is stored (the cycle that
finishes it writes that status first and comes back), so watchers and `kubectl get` always see
how it ended; one being deleted (a migration's finalizer) is left to its own path.
"""

from __future__ import annotations

import time
from typing import Any

from controlplane.common.kube.client import KubeError
from controlplane.common.timestamps import epoch_seconds
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.state import State

SETTLE = 1.0
"""Seconds an operation due for deletion in the cycle that finishes it waits, so its final
status is written (and seen) before it goes."""


def _created(op: dict[str, Any]) -> float:
    created = epoch_seconds((op.get("metadata") or {}).get("creationTimestamp"))
    return time.time() if created is None else created  # not stamped: as young as can be, kept


class Retention:
    name = "retention"

    def __init__(self, finished: frozenset[str], group: indexes.Index, group_field: str) -> None:
        self.finished = finished
        """The phases an operation ends in."""
        self.group = group
        """The index of the operations counted together (`<namespace>/<spec[group_field]>`)."""
        self.group_field = group_field

    def handle(self, state: State) -> None:
        if not self._done(state.changed):
            return
        keep, ttl = state.ctx.settings.operations_kept, state.ctx.settings.operation_ttl_seconds
        newest_first = sorted(self._finished_together(state), key=_order, reverse=True)
        surplus = newest_first[keep:]
        for op in surplus:
            if op["metadata"]["name"] != state.name:
                _delete(state, op)
        age = time.time() - _created(state.current)
        if age < ttl and all(op["metadata"]["name"] != state.name for op in surplus):
            state.requeue(ttl - age)  # kept for now: back when its time is up
        elif self._done(state.current):
            _delete(state, state.current)  # its final status is stored
        else:
            state.requeue(SETTLE)

    def _done(self, op: dict[str, Any]) -> bool:
        """Finished, and not already being deleted (a migration's finalizer: its own path)."""
        return (op.get("status") or {}).get("phase") in self.finished and not (op.get("metadata") or {}).get(
            "deletionTimestamp")

    def _finished_together(self, state: State) -> list[dict[str, Any]]:
        """The finished operations of this one's group, this one as the cycle leaves it included."""
        value = f"{state.namespace}/{state.spec.get(self.group_field, '')}"
        others = [op for op in state.lookup(self.group, value)
                  if op["metadata"]["name"] != state.name and self._done(op)]
        return [*others, state.changed]


def _order(op: dict[str, Any]) -> tuple[str, str]:
    meta = op["metadata"]
    return meta.get("creationTimestamp") or "", meta["name"]


def _delete(state: State, op: dict[str, Any]) -> None:
    meta = op["metadata"]
    try:
        state.ctx.kube.delete(state.resource, meta["name"], meta.get("namespace") or state.namespace,
                              preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
    except KubeError as exc:
        if not (exc.not_found or exc.conflict):
            raise
