"""The API server's Prometheus metrics, with kube-apiserver's names so its dashboards and
alerts carry over: requests by verb/resource/code and their latency, long-running requests
(watches, console streams), registered watchers, objects per resource, datastore size and
commit latency (named as etcd's, which the datastore stands in for).

`middleware` records every request (401s included); `install` adds the scrape-time
collectors for one server's store and watch hub; `response` is the body of `GET /metrics`,
which carries the whole process's registry (controllers and node handler too when they run
in this process).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from controlplane.apiserver import routing, state_metrics
from controlplane.common import component_metrics
from controlplane.common.metrics import CONTENT_TYPE, REGISTRY, Family
from controlplane.common.request_timing import Handler, timed

if TYPE_CHECKING:
    from controlplane.apiserver.storage import Store
    from controlplane.apiserver.watch import WatchHub

REQUESTS = REGISTRY.counter(
    "apiserver_request_total",
    "Counter of apiserver requests broken out for each verb, group, version, resource, subresource and "
    "HTTP response code.",
    ("verb", "group", "version", "resource", "subresource", "code"))
DURATION = REGISTRY.histogram(
    "apiserver_request_duration_seconds",
    "Response latency distribution in seconds for each verb, group, version, resource and subresource "
    "(long-running requests excluded).",
    ("verb", "group", "version", "resource", "subresource"))
LONGRUNNING = REGISTRY.gauge(
    "apiserver_longrunning_requests",
    "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource "
    "and subresource.",
    ("verb", "group", "version", "resource", "subresource"))
COMMIT = REGISTRY.histogram(
    "etcd_disk_backend_commit_duration_seconds",
    "The latency distributions of commits (one SQLite transaction and fsync per batch of writes).",
    (), buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096))
COMMIT_OPS = REGISTRY.counter(
    "apiserver_storage_writes_total", "Writes committed to the datastore (creates, updates, deletes).")

_STREAMING_SUBRESOURCES = frozenset({"console", "vnc", "portforward", "exec", "attach", "log"})
_MUTATING = {"POST": "POST", "PUT": "PUT", "DELETE": "DELETE"}


def classify(request: web.Request) -> tuple[str, routing.Target | None, bool]:
    """(kube verb, target, long-running) of a request."""
    target = routing.parse(request.path.rstrip("/") or "/")
    method = request.method
    if method == "GET":
        if target is not None and request.query.get("watch") in ("true", "1"):
            return "WATCH", target, True
        if target is not None and not target.name:
            return "LIST", target, False
        longrunning = target is not None and target.subresource in _STREAMING_SUBRESOURCES
        return ("CONNECT" if longrunning else "GET"), target, longrunning
    if method == "PATCH":
        return ("APPLY" if "apply-patch" in request.content_type else "PATCH"), target, False
    if method == "DELETE" and target is not None and not target.name:
        return "DELETECOLLECTION", target, False
    return _MUTATING.get(method, method), target, False


CLASSIFIED = "dvp_request_class"


def classified(request: web.Request) -> tuple[str, routing.Target | None, bool]:
    """`classify`, once per request: the first middleware that asks keeps the answer."""
    found: tuple[str, routing.Target | None, bool] | None = request.get(CLASSIFIED)
    if found is None:
        found = request[CLASSIFIED] = classify(request)
    return found


def _labels(target: routing.Target | None, verb: str) -> tuple[str, str, str, str, str]:
    if target is None:
        return verb, "", "", "", ""
    return verb, target.group, target.version, target.plural, target.subresource


def middleware(known: Callable[[routing.Target], bool]) -> Middleware:
    """Record every request. Paths of resources the server does not serve, and requests that
    did not authenticate, are counted without group/version/resource, so no client can grow
    the number of series by inventing paths."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        verb, target, longrunning = classified(request)
        labels = _labels(target if target is not None and known(target) else None, verb)
        if longrunning:
            LONGRUNNING.inc(*labels)

        def done(code: int, seconds: float) -> None:
            if longrunning:
                LONGRUNNING.dec(*labels)
            else:
                DURATION.observe(seconds, *labels)
            REQUESTS.inc(*(labels if "user" in request else _labels(None, verb)), str(code))

        return await timed(request, handler, done)

    return record


async def response(components: Path | None = None) -> web.Response:
    """This process's registry, then (under a supervisor) every other component's."""
    text = REGISTRY.expose()
    if components is not None:
        text = component_metrics.merge(text, await component_metrics.gather(components))
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def _split(resource: str) -> tuple[str, str]:
    group, _, plural = resource.rpartition("/")
    return group, plural


def collector(store: Store, hub: WatchHub) -> Callable[[], Iterable[Family]]:
    def collect() -> Iterable[Family]:
        objects = Family("apiserver_storage_objects", "gauge",
                         "Number of stored objects at the time of last check split by kind.", ("resource",))
        for res in sorted(store.resources()):
            group, plural = _split(res)
            objects.add(float(store.count(res)), f"{plural}.{group}" if group else plural)
        watchers = Family("apiserver_registered_watchers", "gauge",
                          "Number of currently registered watchers for a given resource.", ("group", "resource"))
        for res, ws in sorted(hub._watchers.items()):
            watchers.add(float(len(ws)), *_split(res))
        size = Family("apiserver_storage_size_bytes", "gauge",
                      "Size of the storage database file physically allocated in bytes.", ("storage_cluster_id",))
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{store.path}{suffix}").st_size
        size.add(float(total), "sqlite")
        revision = Family("apiserver_storage_revision", "gauge", "The datastore's current resourceVersion.")
        revision.add(float(store.rv))
        return [objects, watchers, size, revision]

    return collect


def install(store: Store, hub: WatchHub) -> None:
    """Collect this server's storage figures on every scrape and time its commits."""
    REGISTRY.add_collector("apiserver", collector(store, hub))
    REGISTRY.add_collector("apiserver-state", lambda: state_metrics.collect(store))
    if getattr(store, "_metrics_wrapped", False):
        return
    inner = store._commit_batch

    async def timed(ops: list[Any]) -> None:
        start = time.perf_counter()
        await inner(ops)
        COMMIT.observe(time.perf_counter() - start)
        COMMIT_OPS.inc(amount=float(len(ops)))

    store._commit_batch = timed  # type: ignore[method-assign]
    store._metrics_wrapped = True  # type: ignore[attr-defined]
