"""The controller runtime's Prometheus metrics, with controller-runtime's and client-go's
work-queue names (`controller_runtime_reconcile_*`, `workqueue_*`), so dashboards and alerts
written for Kubernetes operators read ours unchanged.

`Controller` records one outcome per reconcile; `WorkQueue` (when given a name) records
adds, depth, retries and how long keys waited. They land in the process-wide registry and are
served by whoever serves `/metrics` in this process.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from controlplane.common.metrics import REGISTRY

RECONCILE_TOTAL = REGISTRY.counter(
    "controller_runtime_reconcile_total", "Total number of reconciliations per controller.", ("controller", "result"))
RECONCILE_ERRORS = REGISTRY.counter(
    "controller_runtime_reconcile_errors_total", "Total number of reconciliation errors per controller.",
    ("controller",))
RECONCILE_TIME = REGISTRY.histogram(
    "controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller.",
    ("controller",))
DEPTH = REGISTRY.gauge("workqueue_depth", "Current depth of workqueue.", ("name", "controller"))
ADDS = REGISTRY.counter("workqueue_adds_total", "Total number of adds handled by workqueue.", ("name", "controller"))
RETRIES = REGISTRY.counter("workqueue_retries_total", "Total number of retries handled by workqueue.",
                           ("name", "controller"))
QUEUE_DURATION = REGISTRY.histogram(
    "workqueue_queue_duration_seconds", "How long in seconds an item stays in workqueue before being requested.",
    ("name", "controller"))
WORK_DURATION = REGISTRY.histogram(
    "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.",
    ("name", "controller"))

# outcomes, as controller-runtime labels them
SUCCESS, ERROR, REQUEUE, REQUEUE_AFTER = "success", "error", "requeue", "requeue_after"


def reconciled(controller: str, result: str, seconds: float) -> None:
    RECONCILE_TOTAL.inc(controller, result)
    if result == ERROR:
        RECONCILE_ERRORS.inc(controller)
    RECONCILE_TIME.observe(seconds, controller)


class QueueMetrics:
    """One work queue's figures; called by the queue under its own lock."""

    def __init__(self, name: str) -> None:
        self.labels = (name, name)
        self._since: dict[Hashable, float] = {}
        self._started: dict[Hashable, float] = {}
        DEPTH.set(0.0, *self.labels)

    def added(self, key: Hashable, depth: int) -> None:
        ADDS.inc(*self.labels)
        DEPTH.set(float(depth), *self.labels)
        self._since.setdefault(key, time.monotonic())

    def taken(self, key: Hashable, depth: int) -> None:
        now = time.monotonic()
        DEPTH.set(float(depth), *self.labels)
        since = self._since.pop(key, None)
        if since is not None:
            QUEUE_DURATION.observe(now - since, *self.labels)
        self._started[key] = now

    def done(self, key: Hashable, depth: int) -> None:
        DEPTH.set(float(depth), *self.labels)
        started = self._started.pop(key, None)
        if started is not None:
            WORK_DURATION.observe(time.monotonic() - started, *self.labels)

    def retried(self) -> None:
        RETRIES.inc(*self.labels)
