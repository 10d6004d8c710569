"""Kubernetes Events for users (`kubectl describe` shows them): one Event per
(object, reason, message), its count and lastTimestamp bumped on repeats.

The recorder remembers the counts of the events it wrote (a bounded cache, as client-go's
event correlator keeps), so a new event is one POST and a repeat one PATCH: no GET before each.
An event it does not remember but the API holds (written before a restart) is found by the
POST's AlreadyExists, then read and bumped.

`BackgroundEventRecorder` (the controllers') writes from a thread of its own, as client-go's
broadcaster does: a reconcile hands the event over and goes on, so recording a phase change
never adds an API round trip to the path of the object it reports (a VM's create -> Running
crosses a dozen phase changes). Within `held()` (a controller's reconcile cycle), the events a
thread records wait until the block ends: they reach the API after the cycle's own writes, which
others wait for, instead of competing with them. Each is written `delay` after it was recorded
(`RuntimeSettings.event_delay`, 50 ms): the writes other components wait for in those
milliseconds (a node handler's status answering the cycle's request, the next cycle's) go first.
Its queue is bounded (`QUEUE_SIZE`, client-go's 1000): when the API falls that far behind, new
events are dropped, never the reconciles slowed.

Both keep client-go's spam filter (EventSourceObjectSpamFilter): per recording component and
object, a token bucket of `SPAM_BURST` events refilled at one per `SPAM_REFILL_S` seconds; an
event beyond it is dropped before it costs a write, so an object stuck in a loop of changes
cannot flood the API with events (a VM's normal life records about 7)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from controlplane.common.kube.client import EVENTS, KubeClient, KubeError

log = logging.getLogger(__name__)

_Item = tuple[dict[str, Any], str, str, str, str, float]
"""A queued event: (subject, type, reason, message, time, when to write it: monotonic)."""

CACHE_SIZE = 4096
"""Events whose counts the recorder remembers (the least recently recorded are forgotten)."""
QUEUE_SIZE = 1000
"""Events a `BackgroundEventRecorder` holds while its thread writes (client-go's maxQueuedEvents)."""
SPAM_BURST = 25
"""Events one component may record about one object at once (client-go's defaultSpamBurst)."""
SPAM_REFILL_S = 300.0
"""Seconds per event the burst refills at (client-go's defaultSpamQPS, 1/300)."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, kube: KubeClient, component: str, *, host: str = "") -> None:
        self.kube = kube
        self.component = component
        self.host = host
        self._lock = threading.Lock()
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """Per object (uid), the spam filter's tokens left and when they were counted."""
        self.clock = time.monotonic

    def _allowed(self, obj: dict[str, Any]) -> bool:
        """Whether the spam filter lets one more event about `obj` through (and take its token)."""
        meta = obj.get("metadata") or {}
        key = str(meta.get("uid") or f"{obj.get('kind')}/{meta.get('namespace')}/{meta.get('name')}")
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (float(SPAM_BURST), now))
            tokens = min(float(SPAM_BURST), tokens + (now - then) / SPAM_REFILL_S)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > CACHE_SIZE:
                self._buckets.popitem(last=False)
        if not allowed:
            log.debug("event about %s dropped: more than %d in a burst", meta.get("name"), SPAM_BURST)
        return allowed

    def _remember(self, key: tuple[str, str], count: int) -> None:
        with self._lock:
            self._counts[key] = count
            self._counts.move_to_end(key)
            while len(self._counts) > CACHE_SIZE:
                self._counts.popitem(last=False)

    def _bump(self, name: str, ns: str, count: int, now: str) -> None:
        self.kube.patch(EVENTS, name, {"count": count, "lastTimestamp": now}, ns)
        self._remember((ns, name), count)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Nothing to hold: this recorder writes each event as it is recorded."""
        yield

    def record(self, obj: dict[str, Any], *, type: str, reason: str, message: str) -> None:
        """Record an event about `obj` (type Normal or Warning); never raises."""
        if self._allowed(obj):
            self._write(obj, type=type, reason=reason, message=message, now=_now())

    def _write(self, obj: dict[str, Any], *, type: str, reason: str, message: str, now: str) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        digest = hashlib.sha256(f"{meta.get('uid')}/{reason}/{message}".encode()).hexdigest()[:10]
        name = f"{meta.get('name', 'object')}.{digest}"[:253]
        try:  # the lock guards the cache only: workers recording different events never wait for each other
            with self._lock:
                known = self._counts.get((ns, name))
            if known is not None:
                try:
                    self._bump(name, ns, known + 1, now)
                    return
                except KubeError as exc:
                    with self._lock:
                        self._counts.pop((ns, name), None)
                    if not exc.not_found:
                        raise
            try:
                self._create(obj, name, ns, type=type, reason=reason, message=message, now=now)
            except KubeError as exc:
                if not exc.already_exists:
                    raise
                existing = self.kube.get_or_none(EVENTS, name, ns)
                if existing is not None:
                    self._bump(name, ns, int(existing.get("count") or 1) + 1, now)
        except KubeError as exc:
            log.debug("event %s on %s not recorded: %s", reason, meta.get("name"), exc)

    def _create(self, obj: dict[str, Any], name: str, ns: str, *, type: str, reason: str, message: str,
                now: str) -> None:
        meta = obj.get("metadata") or {}
        self.kube.create(EVENTS, {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                               "name": meta.get("name"), "namespace": meta.get("namespace"),
                               "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": type, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component, "reportingInstance": self.host,
        }, ns)
        self._remember((ns, name), 1)


class BackgroundEventRecorder(EventRecorder):
    """An EventRecorder whose `record` only queues: one thread of its own writes the events in
    the order recorded."""

    def __init__(self, kube: KubeClient, component: str, *, host: str = "", delay: float = 0.0) -> None:
        super().__init__(kube, component, host=host)
        self.delay = delay
        self._queue: queue.Queue[_Item] = queue.Queue(QUEUE_SIZE)
        self._held = threading.local()
        self._thread = threading.Thread(target=self._deliver, name="event-recorder", daemon=True)
        self._thread.start()

    def record(self, obj: dict[str, Any], *, type: str, reason: str, message: str) -> None:
        if not self._allowed(obj):
            return
        meta = obj.get("metadata") or {}
        subject = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),  # what the event names, as of now
                   "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        item = (subject, type, reason, message, _now(), time.monotonic() + self.delay)
        waiting: list[_Item] | None = getattr(self._held, "items", None)
        if waiting is not None:
            waiting.append(item)
        else:
            self._put(item)

    def _put(self, item: _Item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.debug("event %s on %s dropped: %d events are waiting to be written", item[2],
                      item[0]["metadata"].get("name"), QUEUE_SIZE)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Events this thread records in the block are handed to the writer when it ends."""
        if getattr(self._held, "items", None) is not None:
            yield  # nested: the outer block hands them over
            return
        self._held.items = []
        try:
            yield
        finally:
            items, self._held.items = self._held.items, None
            for item in items:
                self._put(item)

    def _deliver(self) -> None:
        while True:
            subject, type_, reason, message, now, due = self._queue.get()
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            try:
                self._write(subject, type=type_, reason=reason, message=message, now=now)
            except Exception:  # noqa: BLE001 - the writer thread must outlive any one event
                log.exception("event %s not recorded", reason)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event is written (tests); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks
