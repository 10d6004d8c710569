"""Watch fan-out: every committed change goes to the watchers of its resource.

A watch starts from a resourceVersion (replaying the history kept by the store, or 410
Gone when that history was compacted away) or from "now" (synthetic ADDED events for the
current objects). Registration and replay happen without yielding to the event loop, so
no change falls between the replay and the live stream. Label and field selectors are
applied per watcher, and an object that stops (starts) matching is sent as DELETED
(ADDED), as kube-apiserver does. A watcher that falls too far behind is closed; clients
re-watch from their last resourceVersion.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from controlplane.apiserver import errors
from controlplane.apiserver.datastore import Datastore, Event, Expired, Stored
from controlplane.apiserver.selectors import FieldSelector, LabelSelector

log = logging.getLogger(__name__)

MAX_QUEUED_EVENTS = 20_000


@dataclass(eq=False)
class Watcher:
    resource: str
    namespace: str | None
    labels: LabelSelector | None
    fields: FieldSelector | None
    queue: asyncio.Queue[tuple[str, Stored] | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def _matches(self, stored: Stored | None) -> bool:
        if stored is None:
            return False
        obj = stored.obj
        if self.labels and not self.labels.matches(obj):
            return False
        return not (self.fields and not self.fields.matches(obj))

    def translate(self, e: Event) -> tuple[str, Stored] | None:
        if self.namespace is not None and not e.key.startswith(self.namespace + "/"):
            return None
        if not self.labels and not self.fields:
            return e.type, e.new
        new_match = self._matches(e.new)
        if e.type == "ADDED":
            return ("ADDED", e.new) if new_match else None
        old_match = self._matches(e.prev) if e.prev is not None else new_match
        if e.type == "DELETED":
            return ("DELETED", e.new) if (new_match or old_match) else None
        if new_match and old_match:
            return "MODIFIED", e.new
        if new_match:
            return "ADDED", e.new
        if old_match:
            return "DELETED", e.new
        return None

    def offer(self, e: Event) -> None:
        if self.overflowed:
            return
        item = self.translate(e)
        if item is None:
            return
        if self.queue.qsize() >= MAX_QUEUED_EVENTS:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(item)


class WatchHub:
    def __init__(self, store: Datastore) -> None:
        self.store = store
        self._watchers: dict[str, set[Watcher]] = {}
        store.subscribe(self._on_events)

    def _on_events(self, events: list[Event]) -> None:
        for e in events:
            for w in self._watchers.get(e.resource, ()):
                w.offer(e)

    def open(self, resource: str, *, namespace: str | None, labels: LabelSelector | None,
             fields: FieldSelector | None, since: int | None) -> tuple[Watcher, list[tuple[str, Stored]]]:
        """Register a watcher; return it and the events to send before live ones.

        `since=None` means "start with the current state". Raises 410 Gone when `since`
        is older than the kept history.
        """
        w = Watcher(resource, namespace, labels, fields)
        initial: list[tuple[str, Stored]] = []
        if since is None:
            for _key, stored in self.store.items(resource, namespace):
                if w._matches(stored):
                    initial.append(("ADDED", stored))
        else:
            try:
                history = self.store.events_since(since)
            except Expired as exc:
                raise errors.from_storage(exc, resource, "", "") from exc
            for e in history:
                if e.resource == resource:
                    item = w.translate(e)
                    if item is not None:
                        initial.append(item)
        self._watchers.setdefault(resource, set()).add(w)
        return w, initial

    def close(self, w: Watcher) -> None:
        watchers = self._watchers.get(w.resource)
        if watchers is not None:
            watchers.discard(w)

