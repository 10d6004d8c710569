"""`dvp v vnc VM`: a local TCP port that speaks VNC to the VM's display, tunnelled through
the API server's `vnc` subresource (point any VNC viewer at it)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from controlplane.cli.connection import Connection


async def serve(conn: Connection, name: str, host: str, port: int, *, once: bool = False) -> None:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(conn.stream_url(name, "vnc"), ssl=conn.ssl, headers=conn.headers,
                                          protocols=("plain.kubevirt.io",))

            async def up() -> None:
                while data := await reader.read(65536):
                    await ws.send_bytes(data)

            async def down() -> None:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        writer.write(msg.data)
                        await writer.drain()

            tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
            await ws.close()
            writer.close()
            if once:
                stop.set()

    stop = asyncio.Event()
    server = await asyncio.start_server(client, host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"VNC of {conn.namespace}/{name} on {host}:{bound} (Ctrl+C to stop)", flush=True)
    async with server:
        with contextlib.suppress(asyncio.CancelledError):
            await stop.wait()
