"""Independent API writes of one reconcile cycle, made at the same time.

A cycle that asks several objects for something (a restore asking each disk's volume to revert)
waits for each write's round trip in turn; the node handler cannot start on the second disk
before the first write returned. Here they go out together, each on its own connection (the
client keeps one per thread), and the cycle goes on once all have answered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WORKERS = 4
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cycle-writes")


def run_all(calls: Sequence[Callable[[], T]]) -> list[T]:
    """The results of `calls` in their order, run at the same time (one alone runs here). Every
    call finishes before the first error, if any, is raised: none is left running."""
    if len(calls) <= 1:
        return [call() for call in calls]
    futures = [_pool.submit(call) for call in calls]
    errors = [exc for f in futures if (exc := f.exception()) is not None]
    if errors:
        raise errors[0]
    return [f.result() for f in futures]
