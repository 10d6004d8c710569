"""Events expire, as kube-apiserver's `--event-ttl` makes them (default one hour): every write of
an Event (its create, each bump of its count) gives it `ttl` seconds more, after which the server
deletes it, and watchers see the DELETED as they see etcd's lease expiring. Without it Events
pile up for ever: a VM records about seven in its life, so a busy cluster's store, its lists and
its memory would grow with every VM ever started.

Deadlines are kept in memory from the store's event stream. At start, an Event stored earlier
gets the time of its last write as it reads (`lastTimestamp`, `eventTime`,
`series.lastObservedTime`, `creationTimestamp`; never later than now) plus `ttl`, so Events
written before a restart still expire on time, and a server that was down longer than `ttl`
deletes them right away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from controlplane.apiserver import errors
from controlplane.apiserver.datastore import Event
from controlplane.apiserver.service import ApiService, DeleteOptions
from controlplane.apiserver.workqueue import AsyncWorker
from controlplane.common.timestamps import epoch_seconds

RESOURCE = "/events"
"""The storage bucket of core v1 Events."""
DEFAULT_TTL = 3600.0
"""kube-apiserver's `--event-ttl` default."""


def last_written(obj: dict[str, Any], now: float) -> float:
    """When the Event was last written as it reads (seconds since the epoch), never after `now`;
    `now` when it names no time."""
    values = [obj.get("lastTimestamp"), obj.get("eventTime"), (obj.get("series") or {}).get("lastObservedTime"),
              (obj.get("metadata") or {}).get("creationTimestamp")]
    seen = [t for t in map(epoch_seconds, values) if t is not None]
    return min(max(seen), now) if seen else now


class EventExpiry:
    def __init__(self, service: ApiService, ttl: float = DEFAULT_TTL, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.ttl = ttl
        self.clock = clock
        self.due: dict[str, float] = {}
        """Store key -> when the Event expires (seconds since the epoch)."""
        self._scheduled: set[str] = set()
        self.queue = AsyncWorker("event-ttl", self._process)

    def start(self) -> None:
        now = self.clock()
        for key, stored in self.service.store.items(RESOURCE):
            self._renew(key, last_written(stored.obj, now) + self.ttl, now)
        self.service.store.subscribe(self._on_events)
        self.queue.start()

    def _renew(self, key: str, due: float, now: float) -> None:
        self.due[key] = due
        if key not in self._scheduled:  # one queued wake-up per Event; it re-arms if renewed since
            self._scheduled.add(key)
            self.queue.add_after(key, due - now)

    def _on_events(self, events: list[Event]) -> None:
        now = self.clock()
        for e in events:
            if e.resource != RESOURCE:
                continue
            if e.type == "DELETED":
                self.due.pop(e.key, None)
            else:
                self._renew(e.key, now + self.ttl, now)

    async def _process(self, item: Hashable) -> None:
        assert isinstance(item, str)
        self._scheduled.discard(item)
        due = self.due.get(item)
        if due is None:
            return
        now = self.clock()
        if due > now:
            self._renew(item, due, now)
            return
        stored = self.service.store.get(RESOURCE, item)
        info = self.service.registry.by_storage_resource(RESOURCE)
        if stored is None or info is None:
            self.due.pop(item, None)
            return
        ns, name = item.split("/", 1)
        try:
            await self.service.delete(info, ns, name, DeleteOptions(uid=stored.obj["metadata"].get("uid")))
        except errors.ApiError as exc:
            if exc.code not in (404, 409):  # gone, or replaced by a new Event of the name: its own deadline
                raise
