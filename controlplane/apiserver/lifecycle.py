"""Background lifecycles of the built-in kinds that own other objects.

- CustomResourceDefinitions: every stored CRD is served (the registry follows the CRD
  events); a deleted CRD keeps its clean-up finalizer until all its custom resources are
  gone, then disappears and stops being served.
- Namespaces: a deleted namespace is Terminating until everything in it is deleted; then
  its `spec.finalizers` are emptied and it is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from controlplane.apiserver import crds, errors
from controlplane.apiserver.datastore import Datastore, Event
from controlplane.apiserver.kinds import CRD_CLEANUP_FINALIZER
from controlplane.apiserver.resources import Registry
from controlplane.apiserver.service import ApiService, DeleteOptions
from controlplane.apiserver.workqueue import AsyncWorker

log = logging.getLogger(__name__)

CRD_RESOURCE = "apiextensions.k8s.io/customresourcedefinitions"
NS_RESOURCE = "/namespaces"


class Lifecycle:
    def __init__(self, service: ApiService) -> None:
        self.service = service
        self.store: Datastore = service.store
        self.registry: Registry = service.registry
        self.queue = AsyncWorker("lifecycle", self._process)

    def load_crds(self) -> None:
        """Serve every stored CRD (called once at start, before the listener opens)."""
        for _key, stored in self.store.items(CRD_RESOURCE):
            self._serve(stored.obj)

    def _serve(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        try:
            self.registry.replace_crd(name, crds.infos_for(crd))
        except Exception:  # a stored CRD that no longer compiles must not stop the server
            log.exception("cannot serve CustomResourceDefinition %s", name)

    def start(self) -> None:
        self.store.subscribe(self._on_events)
        for _key, stored in self.store.items(CRD_RESOURCE):
            if stored.obj["metadata"].get("deletionTimestamp"):
                self.queue.add(("crd", stored.obj["metadata"]["name"]))
        for _key, stored in self.store.items(NS_RESOURCE):
            if stored.obj["metadata"].get("deletionTimestamp"):
                self.queue.add(("ns", stored.obj["metadata"]["name"]))
        self.queue.start()

    def _on_events(self, events: list[Event]) -> None:
        for e in events:
            meta = e.new.obj.get("metadata") or {}
            if e.resource == CRD_RESOURCE:
                if e.type == "DELETED":
                    self.registry.remove_crd(meta["name"])
                else:
                    self._serve(e.new.obj)
                    if meta.get("deletionTimestamp"):
                        self.queue.add(("crd", meta["name"]))
            elif e.resource == NS_RESOURCE:
                if e.type != "DELETED" and meta.get("deletionTimestamp"):
                    self.queue.add(("ns", meta["name"]))
            elif e.type == "DELETED":
                ns = meta.get("namespace")
                if ns:
                    parent = self.store.get(NS_RESOURCE, f"/{ns}")
                    if parent and parent.obj["metadata"].get("deletionTimestamp"):
                        self.queue.add(("ns", ns))
                crd = self._crd_of(e.resource)
                if crd and crd["metadata"].get("deletionTimestamp"):
                    self.queue.add(("crd", crd["metadata"]["name"]))

    def _crd_of(self, resource: str) -> dict[str, Any] | None:
        group, plural = resource.split("/", 1)
        stored = self.store.get(CRD_RESOURCE, f"/{plural}.{group}") if group else None
        return stored.obj if stored else None

    async def _process(self, item: Hashable) -> None:
        assert isinstance(item, tuple)
        what, name = item
        if what == "crd":
            await self._finish_crd(name)
        else:
            await self._finish_namespace(name)

    async def _delete_all(self, resource: str, namespace: str | None) -> int:
        """Delete every object of `resource` (in `namespace`); return how many remain."""
        info = self.registry.by_storage_resource(resource)
        remaining = 0
        for key, stored in list(self.store.items(resource, namespace)):
            remaining += 1
            if info is None or stored.obj["metadata"].get("deletionTimestamp"):
                continue
            ns, obj_name = key.split("/", 1)
            try:
                await self.service.delete(info, ns, obj_name, DeleteOptions())
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        return remaining

    async def _finish_crd(self, name: str) -> None:
        stored = self.store.get(CRD_RESOURCE, f"/{name}")
        if stored is None or not stored.obj["metadata"].get("deletionTimestamp"):
            return
        spec = stored.obj["spec"]
        resource = f"{spec['group']}/{spec['names']['plural']}"
        if await self._delete_all(resource, None):
            return  # the DELETED events of the instances bring us back here
        info = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert info is not None
        finalizers = [f for f in stored.obj["metadata"].get("finalizers") or [] if f != CRD_CLEANUP_FINALIZER]
        await self.service.patch(info, "", name, "application/json-patch+json", [
            {"op": "test", "path": "/metadata/resourceVersion", "value": str(stored.rv)},
            {"op": "replace", "path": "/metadata/finalizers", "value": finalizers}])

    async def _finish_namespace(self, name: str) -> None:
        stored = self.store.get(NS_RESOURCE, f"/{name}")
        if stored is None or not stored.obj["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for info in self.registry.all():
            if info.namespaced and info.is_storage_version:
                remaining += await self._delete_all(info.storage_resource, name)
        if remaining:
            return
        ns_info = self.registry.get("", "v1", "namespaces")
        assert ns_info is not None
        await self.service.patch(ns_info, "", name, "application/merge-patch+json", {"spec": {"finalizers": None}})
