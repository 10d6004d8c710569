"""The API server's background loops (garbage collection, namespace and CRD clean-up) on the
project's one work queue (`common.kube.workqueue.WorkQueue`: de-duplication, per-key backoff,
delayed adds), driven from the event loop instead of worker threads: the handler is a
coroutine, and waiting for work never blocks the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable

from controlplane.common.kube.settings import RuntimeSettings
from controlplane.common.kube.workqueue import WorkQueue

log = logging.getLogger(__name__)

BACKGROUND = RuntimeSettings(retry_base=0.05, retry_max=5.0)
"""Retry delays of the server's own loops: quick first retries, at most 5 s apart."""


class AsyncWorker:
    def __init__(self, name: str, handler: Callable[[Hashable], Awaitable[None]], *,
                 settings: RuntimeSettings = BACKGROUND) -> None:
        self.name = name
        self._handler = handler
        self.queue = WorkQueue(settings)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        """Set while nothing is ready to run (retries waiting for their delay do not count)."""
        self.idle.set()

    def add(self, item: Hashable) -> None:
        self.queue.add(item)
        self.idle.clear()
        self._wake.set()

    def add_after(self, item: Hashable, delay: float) -> None:
        self.queue.add_after(item, delay)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"workqueue-{self.name}")

    async def stop(self) -> None:
        self.queue.shutdown()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            item = self.queue.get_nowait()
            if item is None:
                self.idle.set()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.queue.next_delay())
                continue
            self.idle.clear()
            try:
                await self._handler(item)
                self.queue.forget(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.queue.add_rate_limited(item)
                log.debug("%s: %r failed (%s); retry in %.2fs", self.name, item, exc, delay)
            finally:
                self.queue.done(item)
