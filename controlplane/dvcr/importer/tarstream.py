"""Reading a tar stream as it arrives, to find the disk inside a container image layer.

`TarStream` walks entries of an async byte stream without seeking: ustar and GNU headers,
PAX extended headers (long names, sizes over 8 GiB) and GNU long names. `find_disk`
returns the first regular file under `disk/` (the containerDisk layout) as an async
iterator of its bytes plus its size; the rest of the stream is left for the caller to drain
(so the layer's digest can still be checked).
"""

from __future__ import annotations

import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

BLOCK = 512


class ByteReader:
    """Exact-size reads over an async iterator of chunks."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._it = chunks
        self._buf = bytearray()
        self.eof = False

    async def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self.eof:
            try:
                self._buf += await self._it.__anext__()
            except StopAsyncIteration:
                self.eof = True

    async def read_exactly(self, n: int) -> bytes:
        await self._fill(n)
        if len(self._buf) < n:
            raise EOFError(f"stream ended {n - len(self._buf)} bytes early")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def pieces(self, n: int, *, piece: int = 1 << 20) -> AsyncIterator[bytes]:
        """`n` bytes as chunks of at most `piece` (zero-copy when possible)."""
        while n > 0:
            if not self._buf:
                await self._fill(1)
                if not self._buf:
                    raise EOFError(f"stream ended {n} bytes early")
            take = min(n, len(self._buf), piece)
            out = bytes(self._buf[:take])
            del self._buf[:take]
            n -= take
            yield out

    async def skip(self, n: int) -> None:
        async for _ in self.pieces(n):
            pass

    async def drain(self) -> int:
        n = len(self._buf)
        self._buf.clear()
        async for chunk in self._it:
            n += len(chunk)
        self.eof = True
        return n


@dataclass
class Entry:
    name: str
    size: int
    type: bytes


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        sp = data.index(b" ", pos)
        length = int(data[pos:sp])
        record = data[sp + 1:pos + length - 1].decode("utf-8", "replace")
        key, _, value = record.partition("=")
        out[key] = value
        pos += length
    return out


class TarStream:
    def __init__(self, reader: ByteReader) -> None:
        self.r = reader

    async def next(self) -> Entry | None:
        """The next entry's header (its data is to be read or skipped by the caller)."""
        pax: dict[str, str] = {}
        long_name: str | None = None
        while True:
            block = await self.r.read_exactly(BLOCK)
            if not any(block):
                return None
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise ValueError(f"not a tar stream: {exc}") from exc
            padded = info.size + (-info.size) % BLOCK
            if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
                data = await self.r.read_exactly(padded)
                if info.type == tarfile.XHDTYPE:
                    pax.update(_pax(data[:info.size]))
                continue
            if info.type in (tarfile.GNUTYPE_LONGNAME,):
                data = await self.r.read_exactly(padded)
                long_name = data[:info.size].rstrip(b"\0").decode("utf-8", "surrogateescape")
                continue
            name = pax.get("path") or long_name or info.name
            size = int(pax["size"]) if "size" in pax else info.size
            if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
                size = 0 if info.type != tarfile.GNUTYPE_SPARSE else size
            while name.startswith(("./", "/")):
                name = name[1:] if name.startswith("/") else name[2:]
            return Entry(name, size, info.type)

    async def skip_data(self, e: Entry) -> None:
        await self.r.skip(e.size + (-e.size) % BLOCK)


def is_disk_file(e: Entry) -> bool:
    parts = e.name.split("/")
    return (e.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE) and len(parts) == 2
            and parts[0] == "disk" and bool(parts[1]) and not parts[1].startswith(".wh."))


async def find_disk(reader: ByteReader) -> tuple[Entry, AsyncIterator[bytes]] | None:
    """The first `disk/<file>` of the stream and its bytes; None when there is none."""
    ts = TarStream(reader)
    while True:
        e = await ts.next()
        if e is None:
            return None
        if is_disk_file(e):
            async def data(entry: Entry = e) -> AsyncIterator[bytes]:
                async for piece in reader.pieces(entry.size):
                    yield piece
                await reader.skip((-entry.size) % BLOCK)
            return e, data()
        await ts.skip_data(e)
