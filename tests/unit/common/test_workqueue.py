"""The controller work queue: de-duplication, one worker per key, backoff, delayed adds."""

from __future__ import annotations

import threading
import time

from controlplane.common.kube.settings import RuntimeSettings
from controlplane.common.kube.workqueue import WorkQueue


def test_key_is_queued_once_and_not_handed_out_twice() -> None:
    q = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    first = q.get(timeout=1)
    assert first == "a"
    q.add("a")  # changed while in flight: must come back only after done()
    assert q.get(timeout=1) == "b"
    assert q.get(timeout=0.05) is None
    q.done("a")
    assert q.get(timeout=1) == "a"


def test_rate_limited_retries_back_off_exponentially_until_forgotten() -> None:
    q = WorkQueue(RuntimeSettings(retry_base=0.01, retry_max=0.05))
    delays = [q.add_rate_limited("k") for _ in range(5)]
    assert delays == [0.01, 0.02, 0.04, 0.05, 0.05]
    q.forget("k")
    assert q.add_rate_limited("k") == 0.01


def test_add_after_delays_delivery() -> None:
    q = WorkQueue()
    start = time.monotonic()
    q.add_after("late", 0.2)
    assert q.get(timeout=0.05) is None
    assert q.get(timeout=2) == "late"
    assert time.monotonic() - start >= 0.19


def test_shutdown_releases_waiting_workers() -> None:
    q = WorkQueue()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    time.sleep(0.05)
    q.shutdown()
    t.join(2)
    assert got == [None]


def test_backoff_of_a_key_failing_for_hours_stays_at_the_maximum() -> None:
    q = WorkQueue(RuntimeSettings(retry_base=0.01, retry_max=30))
    delays = [q.add_rate_limited("k") for _ in range(2000)]
    assert delays[-1] == 30 and max(delays) == 30
