"""Migrations admitted but not yet seen in the informer cache.

`execute` writes an instance's `spec.migration`; the next operation's reconcile can run before the
cache has that write, see no migration in flight and admit a second one from the same node (DVP's
limits: one outgoing and one incoming migration per node, a cluster cap). As with the scheduler's
assumed placements (scheduler/assumed.py), the check and the admission happen under one lock, and
an admitted migration counts as in flight until the cache shows its request, or `ttl` seconds
after (a write the cache never shows must not block a node for good).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager


class AssumedMigrations:
    def __init__(self, *, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._flights: dict[str, tuple[str, str, float]] = {}  # request id -> (source, target, admitted at)

    @contextmanager
    def admitting(self) -> Iterator[None]:
        """Hold while deciding and writing an admission, so two decisions never miss each other."""
        with self._lock:
            yield

    def flights(self, seen: Iterable[str]) -> list[tuple[str, str]]:
        """(source, target) of the admissions the cache does not show yet (`seen`: the request ids it
        shows); those it shows, and expired ones, are forgotten."""
        seen_ids, now = set(seen), self._clock()
        for rid in [r for r, (_, _, at) in self._flights.items() if r in seen_ids or now - at > self.ttl]:
            del self._flights[rid]
        return [(s, t) for s, t, _ in self._flights.values()]

    def assume(self, request_id: str, source: str, target: str) -> None:
        self._flights[request_id] = (source, target, self._clock())
