"""What keeps DVCR's authentication cheap for legitimate clients under a flood of bad credentials.

Checking a password is a bcrypt (tens of milliseconds of CPU) and checking an unknown bearer
token a TokenReview call to the API server. Unbounded, a flood of wrong passwords (measured:
50 a second slowed a legitimate 3 MB pull from 9 ms to 6.3 s) or of random tokens costs every
other client. So `auth.Authenticator` consults, in this order:

1. `VerdictCache`: credentials already checked, right (minutes, while the htpasswd entry is
   unchanged) or wrong (seconds), keyed by a SHA-256 of the Authorization header; bounded
   in size, oldest entries evicted first. A cached verdict costs no bcrypt and no review.
2. `FailureThrottle`: per source address, a token bucket of failed attempts; once spent,
   that source's unverified credentials are refused (429 with Retry-After) without checking.
3. `CostGate`: at most `concurrency` bcrypt checks or TokenReviews at once, in their own
   threads, with a short queue; beyond it the request is refused (429), never queued forever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class GuardSettings:
    positive_ttl: float = 900.0
    """How long verified basic credentials are trusted without a new bcrypt (while unchanged)."""
    token_positive_ttl: float = 10.0
    negative_ttl: float = 10.0
    max_entries: int = 10_000
    failure_burst: int = 10
    """Failed attempts a source may make at once..."""
    failure_refill_seconds: float = 3.0
    """...and then one more every this many seconds."""
    concurrency: int = 1
    queue: int = 16


class TooManyAttempts(Exception):
    """Refused without checking; `retry_after` seconds until the next attempt is checked."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VerdictCache(Generic[T]):
    """key → (expiry, value), at most `max_entries`, least recently stored evicted first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def get(self, key: str) -> T | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        if hit[0] <= time.monotonic():
            del self._items[key]
            return None
        return hit[1]

    def put(self, key: str, value: T, ttl: float) -> None:
        self._items.pop(key, None)
        self._items[key] = (time.monotonic() + ttl, value)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class FailureThrottle:
    """Per source address: `burst` failures at once, then one per `refill` seconds."""

    def __init__(self, burst: int, refill: float, *, max_sources: int = 10_000) -> None:
        self.burst = burst
        self.refill = refill
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # source → (tokens, at)

    def _tokens(self, source: str, now: float) -> float:
        tokens, at = self._buckets.get(source, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) / self.refill)

    def take(self, source: str) -> None:
        """An unverified attempt from `source` spends a token up front (so attempts in flight
        count); TooManyAttempts when none is left."""
        now = time.monotonic()
        tokens = self._tokens(source, now)
        if tokens < 1.0:
            wait = max(1, int((1.0 - tokens) * self.refill + 0.999))
            raise TooManyAttempts(f"too many failed authentication attempts from {source}; retry in {wait} s",
                                  wait)
        self._store(source, tokens - 1.0, now)

    def refund(self, source: str) -> None:
        """The attempt succeeded: it costs nothing."""
        now = time.monotonic()
        self._store(source, min(float(self.burst), self._tokens(source, now) + 1.0), now)

    def _store(self, source: str, tokens: float, now: float) -> None:
        self._buckets.pop(source, None)
        self._buckets[source] = (tokens, now)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)


class CostGate:
    """Runs expensive checks (bcrypt, TokenReview) in their own threads, a few at a time."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = max(1, concurrency)
        self.queue = queue
        self._waiting = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="dvcr-auth")
        self._semaphores: dict[int, asyncio.Semaphore] = {}

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.setdefault(id(loop), asyncio.Semaphore(self.concurrency))
        if semaphore.locked() and self._waiting >= self.queue:
            raise TooManyAttempts("too many authentication checks in progress; retry in a second", 1)
        self._waiting += 1
        try:
            async with semaphore:
                return await loop.run_in_executor(self._pool, fn, *args)
        finally:
            self._waiting -= 1
