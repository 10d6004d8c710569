"""Watchers: each maps events of a related kind to the keys of the objects that must be
reconciled again (a VirtualDisk event -> the VMs that use it), ignoring changes that don't
matter (resourceVersion-only status churn of the related kind is filtered by the caller's
`relevant` function; the echo of the reconciler's own write is dropped by `connect` when the
reconciler says so, `Reconciler.echo`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from controlplane.common.kube.client import Resource
from controlplane.common.kube.controller import Controller
from controlplane.controllers.runtime.context import Context

Key = tuple[str, str]


def own_key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


@dataclass
class Watch:
    resource: Resource
    keys: Callable[[dict[str, Any]], Iterable[Key]]
    relevant: Callable[[dict[str, Any], dict[str, Any] | None], bool] | None = None


def connect(ctx: Context, controller: Controller, watches: list[Watch], *, own: Resource | None = None,
            echo: Callable[[dict[str, Any]], bool] | None = None) -> None:
    """Route each watch's events to `controller`; an event of kind `own` for which `echo` says it
    only brings back the reconciler's own write does not queue the object itself."""
    for w in watches:
        def handler(typ: str, obj: dict[str, Any], old: dict[str, Any] | None, w: Watch = w) -> None:
            if typ == "MODIFIED" and w.relevant is not None and not w.relevant(obj, old):
                return
            keys = dict.fromkeys(w.keys(obj))  # ordered, each key once: O(keys) for a node's many VMs
            if old is not None and typ == "MODIFIED":  # the objects it concerned before the change too
                keys.update(dict.fromkeys(w.keys(old)))
                if echo is not None and w.resource == own and echo(obj):
                    keys.pop(own_key(obj), None)
            for key in keys:
                controller.enqueue(key)
        ctx.informer(w.resource).add_handler(handler)


def spec_changed(obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """`relevant` for watchers that read only a related object's spec, existence and deletion:
    its status writes (a class counting its users, a disk's progress) wake nobody."""
    if old is None:
        return True
    meta, old_meta = obj.get("metadata") or {}, old.get("metadata") or {}
    return (obj.get("spec") != old.get("spec") or meta.get("deletionTimestamp") != old_meta.get("deletionTimestamp")
            or meta.get("generation") != old_meta.get("generation"))


def fields_changed(*paths: tuple[str, ...]) -> Callable[[dict[str, Any], dict[str, Any] | None], bool]:
    """`relevant` for watchers that read only these fields of a related object (and its deletion):
    `fields_changed(("spec", "blockDeviceRefs"), ("status", "nodeName"))`."""
    def value(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
        cur: Any = obj
        for part in path:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(part)
        return cur

    def relevant(obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
        if old is None:
            return True
        return any(value(obj, p) != value(old, p) for p in (*paths, ("metadata", "deletionTimestamp")))
    return relevant


def owners_of_kind(kind: str) -> Callable[[dict[str, Any]], Iterable[Key]]:
    """Keys of the owners of `kind` named in an object's ownerReferences (same namespace)."""
    def keys(obj: dict[str, Any]) -> Iterable[Key]:
        meta = obj.get("metadata") or {}
        return [(meta.get("namespace") or "", r["name"]) for r in meta.get("ownerReferences") or []
                if r.get("kind") == kind]
    return keys
