"""The write gate between requests that change the registry and garbage collection.

Every request that changes what is stored (finishing an upload, a mount, a manifest put,
a delete) holds the gate open while it runs. GC closes it: new writes are answered with
the "read-only during garbage collection" error, GC waits for the writes in flight to
finish, marks and sweeps, then opens the gate again. Data still streaming into an upload
session (PATCH) is not a write in this sense: it touches only that session's own folder.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from controlplane.dvcr import errors


class WriteGate:
    def __init__(self) -> None:
        self.read_only = False
        self._writers = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()

    @contextlib.asynccontextmanager
    async def write(self, *, wait: bool = False) -> AsyncIterator[None]:
        """Hold the gate for one write; refuse (or with `wait`, wait) while GC runs."""
        while self.read_only:
            if not wait:
                raise errors.read_only()
            await self._open.wait()
        self._writers += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._writers -= 1
            if self._writers == 0:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def exclusive(self, *, drain_timeout: float = 60.0) -> AsyncIterator[None]:
        """Close the gate, wait for writes in flight, and keep it closed for the block."""
        if self.read_only:
            raise RuntimeError("garbage collection is already running")
        self.read_only = True
        self._open.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), drain_timeout)
            yield
        finally:
            self.read_only = False
            self._open.set()
