"""Owner-reference garbage collection, as Kubernetes' garbage collector does it.

- Background: once no owner of an object exists any more (by uid), the object is deleted;
  references to owners that are gone are removed when other owners remain.
- Foreground: an owner deleted with `propagationPolicy: Foreground` carries the
  `foregroundDeletion` finalizer; its dependents are deleted (in foreground too), and the
  finalizer is removed once no dependent with `blockOwnerDeletion: true` is left.
- Orphan: an owner carrying the `orphan` finalizer has its uid removed from every
  dependent's ownerReferences, then loses the finalizer.

The collector keeps an index uid -> object and owner uid -> dependents from the store's
event stream, and re-checks everything at start, so a crash between steps is finished
after restart.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from controlplane.apiserver import errors
from controlplane.apiserver.datastore import Datastore, Event
from controlplane.apiserver.service import ApiService, DeleteOptions
from controlplane.apiserver.workqueue import AsyncWorker

log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
Ref = tuple[str, str]  # (storage resource, key)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


class GarbageCollector:
    def __init__(self, service: ApiService) -> None:
        self.service = service
        self.store: Datastore = service.store
        self.uids: dict[str, Ref] = {}
        self.dependents: dict[str, set[Ref]] = {}
        self._owners_of: dict[Ref, set[str]] = {}
        self.queue = AsyncWorker("gc", self._process)

    def start(self) -> None:
        for resource in self.store.resources():
            for key, stored in self.store.items(resource):
                self._index((resource, key), stored.obj)
        for ref in list(self._owners_of):
            self.queue.add(("dependent", *ref))
        for _uid, ref in self.uids.items():
            owner = self.store.get(*ref)
            if owner and _meta(owner.obj).get("deletionTimestamp"):
                self.queue.add(("owner", *ref))
        self.store.subscribe(self._on_events)
        self.queue.start()

    def _index(self, ref: Ref, obj: dict[str, Any]) -> None:
        meta = _meta(obj)
        if meta.get("uid"):
            self.uids[meta["uid"]] = ref
        owners = {str(o["uid"]) for o in meta.get("ownerReferences") or [] if isinstance(o, dict) and o.get("uid")}
        for uid in self._owners_of.get(ref, set()) - owners:
            self.dependents.get(uid, set()).discard(ref)
        for uid in owners:
            self.dependents.setdefault(uid, set()).add(ref)
        if owners:
            self._owners_of[ref] = owners
        else:
            self._owners_of.pop(ref, None)

    def _on_events(self, events: list[Event]) -> None:
        for e in events:
            ref = (e.resource, e.key)
            meta = _meta(e.new.obj)
            if e.type == "DELETED":
                uid = meta.get("uid", "")
                if self.uids.get(uid) == ref:
                    del self.uids[uid]
                for dep in self.dependents.get(uid, set()):
                    self.queue.add(("dependent", *dep))
                for owner_uid in self._owners_of.pop(ref, set()):
                    self.dependents.get(owner_uid, set()).discard(ref)
                    owner = self.uids.get(owner_uid)
                    if owner:
                        self.queue.add(("owner", *owner))
                continue
            self._index(ref, e.new.obj)
            if meta.get("ownerReferences"):
                self.queue.add(("dependent", *ref))
            finalizers = meta.get("finalizers") or []
            if meta.get("deletionTimestamp") and (FOREGROUND in finalizers or ORPHAN in finalizers):
                self.queue.add(("owner", *ref))

    async def _process(self, item: Hashable) -> None:
        assert isinstance(item, tuple)
        what, resource, key = item
        stored = self.store.get(resource, key)
        info = self.service.registry.by_storage_resource(resource)
        if stored is None or info is None:
            return
        ns, name = key.split("/", 1)
        if what == "dependent":
            await self._check_dependent(info, ns, name, stored.obj)
        else:
            await self._check_owner(info, ns, name, stored.obj)

    async def _check_dependent(self, info: Any, ns: str, name: str, obj: dict[str, Any]) -> None:
        refs = [r for r in _meta(obj).get("ownerReferences") or [] if isinstance(r, dict)]
        if not refs:
            return
        alive = [r for r in refs if r.get("uid") in self.uids]
        if not alive:
            log.info("gc: deleting %s %s/%s: all owners are gone", info.kind, ns, name)
            try:
                await self.service.delete(info, ns, name, DeleteOptions(uid=_meta(obj).get("uid")))
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        elif len(alive) < len(refs):
            await self._set_owner_refs(info, ns, name, alive)

    async def _set_owner_refs(self, info: Any, ns: str, name: str, refs: list[dict[str, Any]]) -> None:
        try:
            await self.service.patch(info, ns, name, "application/merge-patch+json",
                                     {"metadata": {"ownerReferences": refs or None}})
        except errors.ApiError as exc:
            if exc.code != 404:
                raise

    async def _check_owner(self, info: Any, ns: str, name: str, obj: dict[str, Any]) -> None:
        meta = _meta(obj)
        if not meta.get("deletionTimestamp"):
            return
        uid = meta.get("uid", "")
        finalizers = list(meta.get("finalizers") or [])
        deps = list(self.dependents.get(uid, set()))
        if ORPHAN in finalizers:
            for res, key in deps:
                dep_info = self.service.registry.by_storage_resource(res)
                stored = self.store.get(res, key)
                if dep_info is None or stored is None:
                    continue
                keep = [r for r in _meta(stored.obj).get("ownerReferences") or [] if r.get("uid") != uid]
                dns, dname = key.split("/", 1)
                await self._set_owner_refs(dep_info, dns, dname, keep)
            await self._remove_finalizer(info, ns, name, ORPHAN)
            return
        if FOREGROUND in finalizers:
            blocking = 0
            for res, key in deps:
                dep_info = self.service.registry.by_storage_resource(res)
                stored = self.store.get(res, key)
                if dep_info is None or stored is None:
                    continue
                ref: dict[str, Any] = next((r for r in _meta(stored.obj).get("ownerReferences") or []
                                            if r.get("uid") == uid), {})
                if ref.get("blockOwnerDeletion"):
                    blocking += 1
                if not _meta(stored.obj).get("deletionTimestamp"):
                    dns, dname = key.split("/", 1)
                    try:
                        await self.service.delete(dep_info, dns, dname, DeleteOptions(propagation="Foreground"))
                    except errors.ApiError as exc:
                        if exc.code != 404:
                            raise
            if blocking == 0:
                await self._remove_finalizer(info, ns, name, FOREGROUND)

    async def _remove_finalizer(self, info: Any, ns: str, name: str, finalizer: str) -> None:
        stored = self.service.get(info, ns, name)
        finalizers = [f for f in _meta(stored.obj).get("finalizers") or [] if f != finalizer]
        patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": str(stored.rv)},
                 {"op": "replace", "path": "/metadata/finalizers", "value": finalizers}]
        await self.service.patch(info, ns, name, "application/json-patch+json", patch)
