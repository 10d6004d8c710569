"""The API server's background loops run on the project's one work queue, driven from asyncio:
items are de-duplicated, a failing item is retried with backoff, delayed adds wait, and `idle`
says when nothing is left to run."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from controlplane.apiserver.workqueue import AsyncWorker
from controlplane.common.kube.settings import RuntimeSettings
from controlplane.common.kube.workqueue import WorkQueue


async def test_dedup_retry_and_idle() -> None:
    seen: list[Hashable] = []
    fails = {"flaky": 2}

    async def handle(item: Hashable) -> None:
        seen.append(item)
        if fails.get(str(item), 0) > 0:
            fails[str(item)] -= 1
            raise RuntimeError("not yet")

    worker = AsyncWorker("t", handle, settings=RuntimeSettings(retry_base=0.01, retry_max=0.05))
    worker.add("a")
    worker.add("a")
    worker.add("flaky")
    worker.start()
    await asyncio.sleep(0.3)
    await asyncio.wait_for(worker.idle.wait(), 2)
    assert seen.count("a") == 1
    assert seen.count("flaky") == 3, "retried until it succeeded"
    assert worker.queue.failures("flaky") == 0
    await worker.stop()


async def test_delayed_add_runs_after_its_delay() -> None:
    ran = asyncio.Event()

    async def handle(item: Hashable) -> None:
        ran.set()

    worker = AsyncWorker("t", handle)
    worker.start()
    loop = asyncio.get_running_loop()
    start = loop.time()
    worker.add_after("later", 0.2)
    await asyncio.wait_for(ran.wait(), 2)
    assert loop.time() - start >= 0.19
    await worker.stop()


def test_get_nowait_and_next_delay() -> None:
    q = WorkQueue()
    assert q.get_nowait() is None and q.next_delay() is None
    q.add_after("x", 30)
    delay = q.next_delay()
    assert delay is not None and 29 < delay <= 30
    assert q.get_nowait() is None
    q.add("y")
    assert q.get_nowait() == "y"
