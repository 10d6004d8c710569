"""An in-memory store standing in for the API and the informer caches in the snapshot
controllers' unit tests: objects by (plural, namespace, name), indexes computed on demand."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Callable, Iterable
from typing import Any

from controlplane.apiserver.patch import merge_patch
from controlplane.common.kube.client import KubeError, Resource
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.settings import PlatformSettings
from tests.unit.controllers.recorders import CollectedEvents


class Store:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.deleted: list[tuple[str, str]] = []
        self.indexes: dict[tuple[str, str], Callable[[dict[str, Any]], Iterable[str]]] = {}

    def put(self, resource: Resource, obj: dict[str, Any]) -> None:
        self.objects[(resource.plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj

    def find(self, resource: Resource, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.objects.get((resource.plural, namespace, name))

    def cache(self, resource: Resource) -> Any:
        store = self

        class Cache:
            def get(self, namespace: str, name: str) -> dict[str, Any] | None:
                return store.objects.get((resource.plural, namespace, name))

            def list(self, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
                return [o for (p, ns, _), o in store.objects.items() if p == resource.plural
                        and namespace in (None, ns)]

            def add_index(self, name: str, fn: Callable[[dict[str, Any]], Iterable[str]]) -> None:
                store.indexes[(resource.plural, name)] = fn

            def by_index(self, name: str, value: str) -> builtins.list[dict[str, Any]]:
                fn = store.indexes[(resource.plural, name)]
                return [o for o in self.list() if value in fn(o)]
        return Cache()

    def create(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        key = (resource.plural, body["metadata"].get("namespace", ""), body["metadata"]["name"])
        if key in self.objects:
            raise KubeError(409, "AlreadyExists", f"{key[2]} already exists")
        self.objects[key] = copy.deepcopy(body)
        return body

    def replace(self, resource: Resource, body: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        self.put(resource, copy.deepcopy(body))
        return body

    def patch(self, resource: Resource, name: str, patch: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        obj = self.objects[(resource.plural, namespace or "", name)]
        merged = merge_patch(obj, patch)  # a JSON merge patch, as the API server applies it
        obj.clear()
        obj.update(merged)  # in place: tests hold the object
        return obj

    def delete_if_exists(self, resource: Resource, name: str, namespace: str | None = None) -> bool:
        self.deleted.append((resource.plural, name))
        return self.objects.pop((resource.plural, namespace or "", name), None) is not None


def context(store: Store, *resources: Resource) -> Context:
    ctx = Context(kube=store, settings=PlatformSettings(), recorder=CollectedEvents())
    for res in resources:
        ctx.informers[res] = store.cache(res)
    return ctx
