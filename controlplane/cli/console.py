"""`dvp v console VM`: the VM's serial console in this terminal, through the API server's
`console` subresource. Ctrl+] leaves, as with `d8 v console`. Without a terminal, stdin
is sent and the console's output is written to stdout (for scripts)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from typing import Any

import aiohttp

from controlplane.cli.connection import Connection

ESCAPE = b"\x1d"  # Ctrl+]


async def attach(conn: Connection, name: str, *, timeout: float | None = None) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(conn.stream_url(name, "console"), ssl=conn.ssl, headers=conn.headers,
                                          protocols=("plain.kubevirt.io",), heartbeat=30)
        except aiohttp.WSServerHandshakeError as exc:
            sys.stderr.write(f"cannot open the console of {conn.namespace}/{name}: {exc.status} {exc.message}\n")
            return 1
        interactive = sys.stdin.isatty()
        if interactive:
            sys.stderr.write(f"Connected to {name}'s serial console. Press Ctrl+] to exit.\r\n")
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        old: Any = None
        if interactive:
            old = termios.tcgetattr(sys.stdin.fileno())
            tty.setraw(sys.stdin.fileno())

        def on_input() -> None:
            data = os.read(sys.stdin.fileno(), 4096)
            if interactive and ESCAPE in data:
                data = data.split(ESCAPE, 1)[0]
                if data:
                    asyncio.ensure_future(ws.send_bytes(data))
                done.set()
                return
            if not data:  # end of input: keep showing output until the console closes or times out
                loop.remove_reader(sys.stdin.fileno())
                return
            asyncio.ensure_future(ws.send_bytes(data))

        loop.add_reader(sys.stdin.fileno(), on_input)

        async def output() -> None:
            async for msg in ws:
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                    sys.stdout.buffer.write(data)
                    sys.stdout.buffer.flush()
            done.set()

        reader = asyncio.ensure_future(output())
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(sys.stdin.fileno())
            if old is not None:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, old)
                sys.stderr.write("\r\n")
            reader.cancel()
            await ws.close()
        return 0
