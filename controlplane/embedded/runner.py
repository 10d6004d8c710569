"""Runs the embedded control plane's components in order and stops them in reverse.

Each component has a name, `start()` (returns once it is ready, or raises with context) and
`stop()`. A failure names the component ("starting DVCR: ..."); what already started is
stopped again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ComponentError(RuntimeError):
    pass


@dataclass
class Runner:
    components: list[Component]

    async def run(self, stop_event: asyncio.Event | None = None) -> None:
        stop_event = stop_event or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop_event.set)
        started: list[Component] = []
        try:
            for c in self.components:
                try:
                    await c.start()
                except Exception as exc:
                    raise ComponentError(f"starting {c.name}: {exc}") from exc
                started.append(c)
                log.info("%s started", c.name)
            await stop_event.wait()
        finally:
            for c in reversed(started):
                try:
                    await c.stop()
                except Exception:
                    log.exception("stopping %s", c.name)
