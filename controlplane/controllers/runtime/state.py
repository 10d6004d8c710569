"""The per-reconcile state: the object as the cache holds it (`current`, never changed),
a private copy handlers edit (`changed`), lazy getters for related objects, and the
requeue wish of the cycle. The reconciler writes `changed` back once, at the end."""

from __future__ import annotations

import builtins
import math
from typing import TYPE_CHECKING, Any

from controlplane.common.jsoncopy import json_copy
from controlplane.common.kube.client import Resource
from controlplane.controllers.runtime import indexes

if TYPE_CHECKING:
    from controlplane.controllers.runtime.context import Context


class State:
    def __init__(self, ctx: Context, resource: Resource, current: dict[str, Any]) -> None:
        self.ctx = ctx
        self.resource = resource
        self.current = current
        self.changed: dict[str, Any] = json_copy(current)
        self.changed.setdefault("status", {})
        self.requeue_after: float | None = None
        self.stop = False
        self.scratch: dict[str, Any] = {}
        """Values one handler hands to a later one within the cycle (never written)."""
        self._memo: dict[Any, Any] = {}

    # -- identity ---------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.changed["metadata"]
        return meta

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace") or "")

    @property
    def generation(self) -> int:
        return int(self.meta.get("generation") or 1)

    @property
    def uid(self) -> str:
        return str(self.meta.get("uid") or "")

    @property
    def deleting(self) -> bool:
        return bool(self.meta.get("deletionTimestamp"))

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.changed.setdefault("spec", {})
        return spec

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.changed["status"]
        return status

    # -- related objects (from the informer caches, memoised per cycle) ------------------------
    def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ns = (namespace if namespace is not None else self.namespace) if resource.namespaced else ""
        key = (resource.plural, resource.group, ns, name)
        if key not in self._memo:
            self._memo[key] = self.ctx.cached(resource, ns, name)
        result: dict[str, Any] | None = self._memo[key]
        return result

    def list(self, resource: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.ctx.informer(resource).list(namespace)

    def lookup(self, index: indexes.Index, value: str) -> builtins.list[dict[str, Any]]:
        """Related objects by an informer index (`runtime.indexes`), without scanning the cache."""
        return indexes.lookup(self.ctx, index, value)

    # -- flow ---------------------------------------------------------------------------------
    def requeue(self, after: float) -> None:
        self.requeue_after = min(self.requeue_after if self.requeue_after is not None else math.inf, after)

    def owner_ref(self, *, controller: bool = True, block: bool = True) -> dict[str, Any]:
        """An ownerReference pointing at this object (for objects it creates)."""
        return {"apiVersion": self.resource.api_version, "kind": self.resource.kind, "name": self.name,
                "uid": self.uid, "controller": controller, "blockOwnerDeletion": block}

    def add_finalizer(self, finalizer: str) -> None:
        fins = self.meta.setdefault("finalizers", [])
        if finalizer not in fins:
            fins.append(finalizer)

    def remove_finalizer(self, finalizer: str) -> None:
        self.meta["finalizers"] = [f for f in self.meta.get("finalizers") or [] if f != finalizer]
