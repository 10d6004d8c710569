"""Small building blocks for the import pipeline's async byte streams.

- `rechunk` regroups a stream into ~1 MiB pieces (fewer, larger steps downstream);
- `Peeker` lets the pipeline look at the first bytes (to detect compression and format)
  and then replays them;
- `HashWorker` feeds hashers from one background thread, in order, a few chunks behind
  the stream, so hashing overlaps network I/O instead of stalling the event loop;
- `unpack` runs gzip/xz decompression in a thread, chunk by chunk.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from controlplane.dvcr.importer.decompress import Unpacker

PIECE = 1 << 20


async def rechunk(chunks: AsyncIterator[bytes], *, size: int = PIECE) -> AsyncIterator[bytes]:
    buf = bytearray()
    async for chunk in chunks:
        if not buf and len(chunk) >= size:
            yield chunk
            continue
        buf += chunk
        if len(buf) >= size:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


class Peeker:
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._it = chunks
        self._head: list[bytes] = []
        self._done = False

    async def peek(self, n: int) -> bytes:
        have = sum(len(c) for c in self._head)
        while have < n and not self._done:
            try:
                chunk = await self._it.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            self._head.append(chunk)
            have += len(chunk)
        return b"".join(self._head)[:n]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self._head:
            yield self._head.pop(0)
        if not self._done:
            async for chunk in self._it:
                yield chunk


class HashWorker:
    """Updates `hashers` with every chunk submitted, in order, on one worker thread."""

    def __init__(self, hashers: list[Any], *, ahead: int = 8) -> None:
        self.hashers = hashers
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dvcr-hash")
        self._pending: deque[Future[None]] = deque()
        self._ahead = ahead

    def _update(self, data: bytes) -> None:
        for h in self.hashers:
            h.update(data)

    async def submit(self, data: bytes) -> None:
        if not self.hashers:
            return
        self._pending.append(self._pool.submit(self._update, data))
        while len(self._pending) > self._ahead:
            await asyncio.wrap_future(self._pending.popleft())

    async def drain(self) -> None:
        while self._pending:
            await asyncio.wrap_future(self._pending.popleft())

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


async def unpack(chunks: AsyncIterator[bytes], kind: str) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    unpacker = Unpacker(kind)
    async for chunk in chunks:
        for piece in await loop.run_in_executor(None, unpacker.feed, chunk):
            yield piece
    for piece in unpacker.finish():
        yield piece
