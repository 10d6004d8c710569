"""The listeners' idle timeout (controlplane/common/listener.py), on a real aiohttp server over
loopback with the timeout shortened: a connection that never finishes its request's headers is
closed, so is one left idle after a response, while a response that streams for longer than the
timeout (a watch) is not cut. And every network listener of the control plane uses it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from controlplane.common import listener

TIMEOUT = 0.5
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def port(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[int]:
    monkeypatch.setattr(listener, "IDLE_TIMEOUT", TIMEOUT)

    async def stream(_request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(_request)
        for _ in range(6):  # 3x the timeout
            await resp.write(b"tick\n")
            await asyncio.sleep(TIMEOUT / 2)
        await resp.write_eof()
        return resp

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/stream", stream)
    runner = listener.app_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    return await asyncio.wait_for(reader.read(), seconds)  # read() returns at EOF: the server closed


async def test_unfinished_headers_are_closed_after_the_idle_timeout(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n")  # never the blank line
    await writer.drain()
    assert await _closed_within(reader, TIMEOUT * 6) == b""
    writer.close()


async def test_an_idle_keepalive_connection_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    rest = await _closed_within(reader, TIMEOUT * 6)
    assert rest == b"ok"
    writer.close()


async def test_a_response_streaming_longer_than_the_timeout_is_not_cut(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    body = await asyncio.wait_for(reader.read(), TIMEOUT * 10)
    assert body.count(b"tick") == 6, body
    writer.close()


def test_every_network_listener_uses_it() -> None:
    sources = {p.relative_to(REPO).as_posix(): p.read_text() for p in (REPO / "controlplane").rglob("*.py")}
    direct = sorted(p for p, s in sources.items() if re.search(r"web\.AppRunner\(", s))
    # the component metrics socket is a Unix socket of the owner only, not a network listener
    assert direct == ["controlplane/common/component_metrics.py", "controlplane/common/listener.py"], direct
    users = {p for p, s in sources.items() if "app_runner(" in s} - {"controlplane/common/listener.py"}
    assert users == {"controlplane/apiserver/server.py", "controlplane/dvcr/server.py",
                     "controlplane/nodehandler/console.py", "controlplane/common/metrics_server.py"}, users
