"""The console endpoint: a VM's serial console and VNC display as websocket streams, over TLS.

    wss://NODE:PORT/v1/namespaces/{ns}/instances/{name}/console   serial console (bytes both ways)
    wss://NODE:PORT/v1/namespaces/{ns}/instances/{name}/vnc       raw RFB (the VNC protocol)
    https://NODE:PORT/healthz                                     "ok", no authentication

Binary websocket messages carry the raw bytes in both directions (text messages from the client
are accepted as input too), like KubeVirt's `plain.kubevirt.io` subprotocol, which is offered.
Every stream needs a bearer token (consoleauth.py). The serial console is libvirt's console
stream of the domain, taken over with FORCE (a second viewer replaces the first, as `virsh
console --force`); VNC is proxied from the unix socket QEMU listens on. The API server's
`console`/`vnc` subresources will proxy to these URLs; the port is published in the Node's
`status.daemonEndpoints.kubeletEndpoint.Port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from typing import Any

import libvirt
from aiohttp import WSMsgType, web

from controlplane.common.listener import app_runner
from controlplane.nodehandler import metrics, volume_data
from controlplane.nodehandler.consoleauth import Denied, TokenReviewer, stream_access
from controlplane.nodehandler.context import NodeContext

log = logging.getLogger(__name__)

SUBPROTOCOLS = ("plain.kubevirt.io",)


class ConsoleServer:
    def __init__(self, ctx: NodeContext, reviewer: TokenReviewer, *, host: str, port: int,
                 ssl_context: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.reviewer = reviewer
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", metrics.handler(self.reviewer, self.ctx.node))
        app.router.add_get("/v1/namespaces/{namespace}/instances/{name}/console", self._console)
        app.router.add_get("/v1/namespaces/{namespace}/instances/{name}/vnc", self._vnc)
        app.router.add_get(volume_data.PATH, volume_data.handler(self.ctx, self.reviewer))
        return app

    async def start(self) -> int:
        self._runner = app_runner(self.app(), shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("console endpoint listening on %s:%s (TLS)", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    # -- shared checks ---------------------------------------------------------------------------
    async def _target(self, request: web.Request) -> tuple[dict[str, Any], str]:
        loop = asyncio.get_running_loop()
        ns, name = request.match_info["namespace"], request.match_info["name"]
        access = stream_access(ns, name, request.path.rsplit("/", 1)[-1])
        try:
            ident = await loop.run_in_executor(None, self.reviewer.authorize, request.headers.get("Authorization"),
                                               access)
        except Denied as exc:
            raise (web.HTTPUnauthorized if exc.status == 401 else web.HTTPForbidden)(text=str(exc)) from exc
        obj = self.ctx.instances.get(ns, name)
        if obj is None or not self.ctx.mine(obj):
            raise web.HTTPNotFound(text=f"instance {ns}/{name} is not on node {self.ctx.node}")
        uid = obj["metadata"]["uid"]
        log.info("console: %s opens %s of %s/%s", ident.username, request.path.rsplit("/", 1)[-1], ns, name)
        return obj, uid

    # -- serial console --------------------------------------------------------------------------
    async def _console(self, request: web.Request) -> web.StreamResponse:
        _obj, uid = await self._target(request)
        loop = asyncio.get_running_loop()
        conn = self.ctx.domains.connect()
        dom = await loop.run_in_executor(None, self.ctx.domains.lookup, uid)
        if dom is None or not dom.isActive():
            raise web.HTTPConflict(text="the VM is not running")
        stream = conn.newStream(0)
        try:
            await loop.run_in_executor(None, dom.openConsole, None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except libvirt.libvirtError as exc:
            raise web.HTTPConflict(text=f"cannot open the serial console: {exc}") from exc
        ws = web.WebSocketResponse(protocols=SUBPROTOCOLS, heartbeat=30)
        await ws.prepare(request)
        out: asyncio.Queue[bytes | None] = asyncio.Queue()
        done = threading.Event()

        def read() -> None:
            try:
                while not done.is_set():
                    data = stream.recv(65536)
                    if not isinstance(data, bytes) or not data:
                        break
                    loop.call_soon_threadsafe(out.put_nowait, data)
            except libvirt.libvirtError as exc:
                if not done.is_set():
                    log.info("console stream of %s ended: %s", uid, exc)
            finally:
                loop.call_soon_threadsafe(out.put_nowait, None)

        reader = threading.Thread(target=read, name=f"console-{uid[:8]}", daemon=True)
        reader.start()

        async def send() -> None:
            while (data := await out.get()) is not None:
                await ws.send_bytes(data)
            await ws.close()

        sender = asyncio.create_task(send())
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                    await loop.run_in_executor(None, stream.send, data)
                elif msg.type == WSMsgType.ERROR:
                    break
        except libvirt.libvirtError as exc:
            log.info("console input of %s failed: %s", uid, exc)
        finally:
            done.set()
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    # -- VNC -------------------------------------------------------------------------------------
    async def _vnc(self, request: web.Request) -> web.StreamResponse:
        obj, uid = await self._target(request)
        if (obj.get("spec") or {}).get("vnc") is False:
            raise web.HTTPNotFound(text="this instance has no VNC display (spec.vnc: false)")
        path = self.ctx.layout.vnc_socket(uid)
        try:
            reader, writer = await asyncio.open_unix_connection(str(path))
        except OSError as exc:
            raise web.HTTPConflict(text=f"the VM's VNC server is not reachable (is it running?): {exc}") from exc
        ws = web.WebSocketResponse(protocols=SUBPROTOCOLS, heartbeat=30)
        await ws.prepare(request)

        async def pump_out() -> None:
            while data := await reader.read(65536):
                await ws.send_bytes(data)
            await ws.close()

        task = asyncio.create_task(pump_out())
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                    writer.write(msg.data if isinstance(msg.data, bytes) else msg.data.encode())
                    await writer.drain()
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
            writer.close()
        return ws
