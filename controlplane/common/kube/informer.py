"""Informers: a local cache of one kind kept current by list + watch.

A background thread lists (paginated), then watches from the list's resourceVersion,
renews the watch from the last version it saw (bookmarks keep that fresh), relists after
410 Gone, and backs off while the API is unreachable. Every change is handed to the
registered handlers as (event type, object, previous object); a periodic resync hands
every cached object again, so level-triggered controllers converge even if they missed
something. Handlers run on the informer's thread: keep them to enqueuing keys.

Indexes (client-go's Indexer): `add_index(name, fn)` keeps, for every value `fn` gives an
object, the keys of the objects giving it, updated with the cache; `by_index(name, value)`
answers "which VMs use class X" in O(answer) instead of scanning every cached object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from controlplane.common.kube.client import KubeClient, KubeError, Resource
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds
Handler = Callable[[str, dict[str, Any], dict[str, Any] | None], None]
IndexFunc = Callable[[dict[str, Any]], Iterable[str]]


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Informer:
    def __init__(self, kube: KubeClient, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 settings: RuntimeSettings = DEFAULT) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.settings = settings
        self.synced = threading.Event()
        self._cache: dict[Key, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._handlers: list[Handler] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rv = ""
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[Key]]] = {}

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    # -- indexes ------------------------------------------------------------------------------------
    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Keep an index `name` of the cache by the values `fn` gives each object (idempotent by name)."""
        with self._lock:
            if name in self._indexers:
                return
            self._indexers[name] = fn
            index: dict[str, set[Key]] = {}
            for key, obj in self._cache.items():
                for value in fn(obj):
                    index.setdefault(value, set()).add(key)
            self._indices[name] = index

    def has_index(self, name: str) -> bool:
        with self._lock:
            return name in self._indexers

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]:
        """The cached objects whose index `name` holds `value`, in key order."""
        with self._lock:
            keys = sorted(self._indices[name].get(value, ()))
            return [self._cache[k] for k in keys if k in self._cache]

    def index_count(self, name: str, value: str) -> int:
        """How many cached objects index `name` holds under `value`, in O(1)."""
        with self._lock:
            return len(self._indices[name].get(value, ()))

    def _index(self, key: Key, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Move `key` from the values `old` gave to those `new` gives (called under the lock)."""
        for name, fn in self._indexers.items():
            index = self._indices[name]
            before = set(fn(old)) if old is not None else set()
            after = set(fn(new)) if new is not None else set()
            for value in before - after:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in after - before:
                index.setdefault(value, set()).add(key)

    # -- cache reads (objects are shared: copy before changing them) -------------------------------
    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._cache.get((namespace or "", name))

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [o for (ns, _), o in self._cache.items() if namespace is None or ns == namespace]

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.resource.plural}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait_synced(self, timeout: float = 30) -> bool:
        return self.synced.wait(timeout)

    def _emit(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        for h in self._handlers:
            try:
                h(typ, obj, old)
            except Exception:
                log.exception("informer %s: handler failed", self.resource.plural)

    def _relist(self) -> None:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.kube.list(self.resource, self.namespace, label_selector=self.label_selector,
                                  field_selector=self.field_selector, limit=500, continue_=token)
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            rv = (page.get("metadata") or {}).get("resourceVersion", "")
            if not token:
                break
        fresh = {key_of(o): o for o in items}
        with self._lock:
            old = self._cache
            self._cache = fresh
            self._rv = rv
            for name, fn in self._indexers.items():
                index: dict[str, set[Key]] = {}
                for k, o in fresh.items():
                    for value in fn(o):
                        index.setdefault(value, set()).add(k)
                self._indices[name] = index
        for k, o in fresh.items():
            self._emit("ADDED" if k not in old else "MODIFIED", o, old.get(k))
        for k, o in old.items():
            if k not in fresh:
                self._emit("DELETED", o, o)
        self.synced.set()

    def _apply(self, event: dict[str, Any]) -> None:
        typ = event.get("type", "")
        obj = event.get("object") or {}
        rv = (obj.get("metadata") or {}).get("resourceVersion", "")
        if typ == "BOOKMARK":
            self._rv = rv or self._rv
            return
        k = key_of(obj)
        with self._lock:
            old = self._cache.get(k)
            if typ == "DELETED":
                self._cache.pop(k, None)
                self._index(k, old, None)
            else:
                self._cache[k] = obj
                self._index(k, old, obj)
            self._rv = rv or self._rv
        self._emit(typ, obj, old)

    def _run(self) -> None:
        failures = 0
        need_list = True
        resync_timer = threading.Timer(self.settings.resync_period, self._resync)
        resync_timer.daemon = True
        resync_timer.start()
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                for event in self.kube.watch(self.resource, self.namespace, resource_version=self._rv,
                                             label_selector=self.label_selector,
                                             field_selector=self.field_selector,
                                             timeout_seconds=self.settings.watch_timeout):
                    self._apply(event)
                    failures = 0
                    if self._stop.is_set():
                        break
            except KubeError as exc:
                if exc.gone:
                    need_list = True
                    continue
                failures += 1
                log.warning("informer %s: %s", self.resource.plural, exc)
            except Exception as exc:  # connection refused, reset, timeouts: the server may be restarting
                failures += 1
                log.debug("informer %s: %s", self.resource.plural, exc)
            if failures:
                delays = self.settings.watch_error_backoff
                self._stop.wait(delays[min(failures - 1, len(delays) - 1)])
        resync_timer.cancel()

    def _resync(self) -> None:
        if self._stop.is_set():
            return
        for obj in self.list():
            self._emit("SYNC", obj, obj)
        timer = threading.Timer(self.settings.resync_period, self._resync)
        timer.daemon = True
        timer.start()
