"""The controller loop: informers feed keys into a work queue; workers run `reconcile(key)`.

A reconcile returns a `Result` (requeue after a delay, or nothing) or raises; what happens
next is decided by `errors.classify` (a conflict is requeued almost at once, a temporary
error after the delay it asks for, anything else with per-key exponential backoff). Errors
never leak out of the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from controlplane.common.kube import errors, metrics
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings
from controlplane.common.kube.workqueue import WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    requeue_after: float | None = None


class Controller:
    def __init__(self, name: str, reconcile: Callable[[Any], Result | None], *, workers: int = 2,
                 settings: RuntimeSettings = DEFAULT) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.settings = settings
        self.queue = WorkQueue(settings, name=name)
        self._threads: list[threading.Thread] = []

    def enqueue(self, key: Hashable) -> None:
        self.queue.add(key)

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"{self.name}-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self.queue.shutdown()

    def _work(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            start = time.perf_counter()
            try:
                metrics.reconciled(self.name, self._one(key), time.perf_counter() - start)
            except Exception:  # noqa: BLE001 - a worker thread must never die
                log.exception("%s %s: unexpected failure while handling a failure; retrying", self.name, key)
                self.queue.add_after(key, self.settings.retry_max)
            finally:
                self.queue.done(key)

    def _one(self, key: Hashable) -> str:
        """Reconcile `key` and queue what comes next; the outcome as controller-runtime labels it."""
        try:
            result = self.reconcile(key)
        except Exception as exc:  # noqa: BLE001 - sorted by what happens next, never leaked
            retry = errors.classify(exc)
            if retry.conflict:
                self.queue.add_after(key, self.settings.conflict_requeue)
                return metrics.REQUEUE
            if retry.after is not None:
                log.info("%s %s: %s (retry in %.1fs)", self.name, key, exc, retry.after)
                self.queue.add_after(key, retry.after)
                return metrics.REQUEUE_AFTER
            delay = self.queue.add_rate_limited(key)
            if retry.temporary:
                log.info("%s %s: %s (retry in %.2fs)", self.name, key, exc, delay)
            else:
                log.warning("%s %s failed (retry in %.2fs)", self.name, key, delay, exc_info=exc)
            return metrics.ERROR
        self.queue.forget(key)
        if result is not None and result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)
            return metrics.REQUEUE_AFTER
        return metrics.SUCCESS
