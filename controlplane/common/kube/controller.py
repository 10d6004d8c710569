"""The controller loop: informers feed keys into a work queue; workers run `reconcile(key)`.

A reconcile returns a `Result` (requeue after a delay, or nothing) or raises:
- `Conflict` / a 409 `KubeError`: someone wrote first — requeue almost at once;
- `TemporaryError(delay)`: try again after `delay`;
- `PermanentError`: log and stop retrying this key until its object changes;
- anything else: retry with per-key exponential backoff.
Errors never leak out of the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from controlplane.common.kube.client import KubeError
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings
from controlplane.common.kube.workqueue import WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    requeue_after: float | None = None


class TemporaryError(Exception):
    def __init__(self, message: str, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(Exception):
    pass


class Controller:
    def __init__(self, name: str, reconcile: Callable[[Any], Result | None], *, workers: int = 2,
                 settings: RuntimeSettings = DEFAULT) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.settings = settings
        self.queue = WorkQueue(settings)
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
            try:
                self._one(key)
            except Exception:  # noqa: BLE001 - a worker thread must never die
                log.exception("%s %s: unexpected failure while handling a failure; retrying", self.name, key)
                self.queue.add_after(key, self.settings.retry_max)
            finally:
                self.queue.done(key)

    def _one(self, key: Hashable) -> None:
        try:
            result = self.reconcile(key)
        except KubeError as exc:
            if exc.conflict:
                self.queue.add_after(key, self.settings.conflict_requeue)
                return
            delay = self.queue.add_rate_limited(key)
            log.warning("%s %s: %s (retry in %.2fs)", self.name, key, exc, delay)
            return
        except TemporaryError as exc:
            log.info("%s %s: %s (retry in %.1fs)", self.name, key, exc, exc.delay)
            self.queue.add_after(key, exc.delay)
            return
        except PermanentError as exc:
            log.error("%s %s: %s", self.name, key, exc)
            self.queue.forget(key)
            return
        except Exception:
            delay = self.queue.add_rate_limited(key)
            log.exception("%s %s failed (retry in %.2fs)", self.name, key, delay)
            return
        self.queue.forget(key)
        if result is not None and result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)
