"""A small de-duplicating asyncio work queue with delayed retries, for the server's own
background loops (garbage collection, namespace and CRD clean-up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class WorkQueue:
    def __init__(self, name: str, handler: Callable[[Hashable], Awaitable[None]], *,
                 retry_delays: tuple[float, ...] = (0.05, 0.2, 1.0, 5.0)) -> None:
        self.name = name
        self._handler = handler
        self._retry_delays = retry_delays
        self._pending: set[Hashable] = set()
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._failures: dict[Hashable, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def add(self, item: Hashable) -> None:
        if item in self._pending:
            return
        self._pending.add(item)
        self.idle.clear()
        self._queue.put_nowait(item)

    def add_after(self, item: Hashable, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, item)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"workqueue-{self.name}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            self._pending.discard(item)
            try:
                await self._handler(item)
                self._failures.pop(item, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                n = self._failures.get(item, 0)
                self._failures[item] = n + 1
                delay = self._retry_delays[min(n, len(self._retry_delays) - 1)]
                log.debug("%s: %r failed (%s); retry in %.2fs", self.name, item, exc, delay)
                self.add_after(item, delay)
            if self._queue.empty():
                self.idle.set()
