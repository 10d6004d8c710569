"""Timing settings of the client-side runtime and the controllers, in one place: every delay
a controller waits or requeues after is named here, not a literal in code."""

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
    resync_period: float = 36000.0
    """Every object is handed to the handlers again this often (level-triggered safety net).
    Ten hours, as controller-runtime's SyncPeriod: a resync reconciles every object of every
    kind, O(objects) of work each period (at 5,000 VMs every 5 minutes, a third of a core for
    nothing), while the reconcilers follow events and wait for time with `requeue_after`."""
    stale_cache_wait: float = 2.0
    """How long a reconciler waits for its cache to show its own last write before it works
    from what the cache holds anyway (the key is looked at again after this long)."""
    requeue_soon: float = 1.0
    """Looking again at work that ends within seconds (a deletion waiting for its dependants,
    an operation being carried out)."""
    requeue_progress: float = 2.0
    """Following work in progress elsewhere (an import, an address being bound)."""
    requeue_waiting: float = 5.0
    """Re-checking a prerequisite that is not ready yet (an image source, DVCR)."""
    requeue_no_capacity: float = 10.0
    """Trying again to place a VM or allocate an address when none is free."""
    start_retry: float = 10.0
    """Node handler: a domain that failed to start is tried again after this long."""
    volume_in_use_retry: float = 2.0
    """Node handler: a deleted volume still attached is looked at again after this long."""
    volume_failed_retry: float = 15.0
    """Node handler: a volume whose provisioning failed is tried again after this long."""
    progress_every: float = 1.0
    """Node handler: the shortest interval between two progress writes of a copy."""
    sweep_every: float = 30.0
    """Node handler: how often domains and local state without an instance are looked for."""
    lease_duration: float = 15.0
    lease_renew_every: float = 5.0
    lease_retry_every: float = 2.0
    lease_release_timeout: float = 5.0
    """A graceful stop waits at most this long for each of its two requests giving the lease up
    (past it the lease expires by itself): a busy API server does not hold the stop up."""
    event_delay: float = 0.05
    """An event is written this long after it is recorded (`BackgroundEventRecorder`): the writes
    an operation waits for (its objects' status) reach the API server first, the events that
    report them just after, instead of queueing with them."""


DEFAULT = RuntimeSettings()
