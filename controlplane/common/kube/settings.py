"""Timing settings of the client-side runtime, in one place (not literals in code)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeSettings:
    retry_base: float = 0.05
    """First retry delay of a failing key; doubles per failure."""
    retry_max: float = 30.0
    """Longest retry delay of a failing key."""
    conflict_requeue: float = 0.01
    """A write that lost an optimistic-concurrency race is retried almost at once."""
    watch_timeout: int = 300
    """Seconds a watch request stays open before it is renewed from the last version."""
    watch_error_backoff: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
    """Delays between reconnects when the API is unreachable."""
    resync_period: float = 300.0
    """Every object is handed to the handlers again this often (level-triggered safety net)."""
    lease_duration: float = 15.0
    lease_renew_every: float = 5.0
    lease_retry_every: float = 2.0


DEFAULT = RuntimeSettings()
