"""A reconciler for one kind: an ordered chain of small handlers over one `State`, then one
write — status through the status subresource guarded by the resourceVersion the cycle
read, then metadata (finalizers, labels, annotations, owners) guarded the same way. A lost
race is a quick requeue (the controller loop treats 409 Conflict so), not an error."""

from __future__ import annotations

import copy
import logging
from typing import Any, Protocol

from controlplane.common.kube.client import KubeError, Resource
from controlplane.common.kube.controller import Result
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State

log = logging.getLogger(__name__)

_META_FIELDS = ("finalizers", "labels", "annotations", "ownerReferences")


class Handler(Protocol):
    name: str

    def handle(self, state: State) -> None: ...


class Reconciler:
    def __init__(self, ctx: Context, resource: Resource, handlers: list[Handler]) -> None:
        self.ctx = ctx
        self.resource = resource
        self.handlers = handlers

    def __call__(self, key: Any) -> Result | None:
        namespace, name = key
        current = self.ctx.cached(self.resource, namespace, name)
        if current is None:
            return None
        state = State(self.ctx, self.resource, current)
        for handler in self.handlers:
            handler.handle(state)
            if state.stop:
                break
        self.write(state)
        return Result(state.requeue_after) if state.requeue_after is not None else None

    def write(self, state: State) -> None:
        current = state.current
        rv = current["metadata"]["resourceVersion"]
        ns = current["metadata"].get("namespace")
        try:
            if (state.changed.get("status") or {}) != (current.get("status") or {}):
                body = copy.deepcopy(current)
                body["status"] = state.changed["status"]
                updated = self.ctx.kube.replace(self.resource, body, subresource="status")
                rv = updated["metadata"]["resourceVersion"]
            patch: dict[str, Any] = {}
            for f in _META_FIELDS:
                new, old = state.changed["metadata"].get(f), current["metadata"].get(f)
                if (new or None) != (old or None):
                    patch[f] = new if new else None
            if patch:
                patch["resourceVersion"] = rv
                self.ctx.kube.patch(self.resource, state.name, {"metadata": patch}, ns)
        except KubeError as exc:
            if exc.not_found:
                return
            raise
