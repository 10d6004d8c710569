"""The one work queue of the project, as client-go's: a key is queued at most once, never
handed to two workers at once, re-queued after `done` if it was added while in flight,
and retried with per-key exponential backoff (`add_rate_limited`) until `forget`.

Controllers' worker threads block in `get`; the API server's asyncio background loops
(garbage collection, namespace and CRD clean-up) drive the same queue without blocking
through `get_nowait` and `next_delay` (`apiserver/workqueue.py`)."""

from __future__ import annotations

import collections
import heapq
import threading
import time
from collections.abc import Hashable

from controlplane.common.kube.metrics import QueueMetrics
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings


class WorkQueue:
    def __init__(self, settings: RuntimeSettings = DEFAULT, *, name: str = "") -> None:
        self.settings = settings
        self._metrics = QueueMetrics(name) if name else None
        self._cond = threading.Condition()
        self._queue: collections.deque[Hashable] = collections.deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._delayed: list[tuple[float, int, Hashable]] = []
        self._seq = 0
        self._shutdown = False

    def add(self, key: Hashable) -> None:
        with self._cond:
            if self._shutdown or key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._queue.append(key)
                self._cond.notify()
            if self._metrics:
                self._metrics.added(key, len(self._queue))

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            self._seq += 1
            heapq.heappush(self._delayed, (time.monotonic() + delay, self._seq, key))
            self._cond.notify()

    def add_rate_limited(self, key: Hashable) -> float:
        with self._cond:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
            if self._metrics:
                self._metrics.retried()
        # the exponent is capped: a key failing for hours must not overflow the float
        delay = min(self.settings.retry_max, self.settings.retry_base * (2.0 ** min(n, 60)))
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> Hashable | None:
        """The next key to work on (None on shutdown or timeout). Call `done(key)` after."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, key = heapq.heappop(self._delayed)
                    if key not in self._dirty:
                        self._dirty.add(key)
                        if key not in self._processing:
                            self._queue.append(key)
                        if self._metrics:
                            self._metrics.added(key, len(self._queue))
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    if self._metrics:
                        self._metrics.taken(key, len(self._queue))
                    return key
                if self._shutdown:
                    return None
                wait = None if deadline is None else deadline - now
                if self._delayed:
                    until = self._delayed[0][0] - now
                    wait = until if wait is None else min(wait, until)
                if wait is not None and wait <= 0 and deadline is not None and now >= deadline:
                    return None
                self._cond.wait(wait)

    def get_nowait(self) -> Hashable | None:
        """The next key that is ready now, or None (never waits). Call `done(key)` after."""
        return self.get(timeout=0)

    def next_delay(self) -> float | None:
        """Seconds until the earliest delayed key is due (None: nothing delayed)."""
        with self._cond:
            return max(0.0, self._delayed[0][0] - time.monotonic()) if self._delayed else None

    def done(self, key: Hashable) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()
            if self._metrics:
                self._metrics.done(key, len(self._queue))

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)
