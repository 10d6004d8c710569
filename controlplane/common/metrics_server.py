"""`/metrics` for a component that runs as a process of its own (`dvp controller`, a node
handler on a worker): HTTPS on a flag-given address, a bearer token checked by the caller's
`authenticate` (TokenReview against the API server, as kube components do), and the
process-wide registry in the Prometheus text format.

Inside `dvp server` the API server's own `/metrics` serves the same registry instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from controlplane.common.hostport import split_host_port
from controlplane.common.kube.client import KubeClient
from controlplane.common.listener import app_runner
from controlplane.common.metrics import CONTENT_TYPE, REGISTRY, Registry

Authenticate = Callable[[str | None], bool]


def token_review(kube: KubeClient, *, ttl: float = 10.0) -> Authenticate:
    """Accept a bearer token the API server authenticates (TokenReview, as kube components
    check scrapers); answers are remembered for `ttl` seconds by the token's SHA-256."""
    cache: dict[str, tuple[float, bool]] = {}
    lock = threading.Lock()

    def authenticate(header: str | None) -> bool:
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            return False
        token = header[7:].strip()
        digest = hashlib.sha256(token.encode()).hexdigest()
        with lock:
            hit = cache.get(digest)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
        answer = kube.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        ok = bool((answer.get("status") or {}).get("authenticated"))
        with lock:
            if len(cache) > 1000:
                cache.clear()
            cache[digest] = (time.monotonic(), ok)
        return ok

    return authenticate


def make_app(authenticate: Authenticate, *, registry: Registry = REGISTRY) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        allowed = await loop.run_in_executor(None, authenticate, request.headers.get("Authorization"))
        if not allowed:
            return web.Response(status=401, text="Unauthorized: a bearer token allowed /metrics is required\n")
        return web.Response(body=registry.expose().encode(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", lambda _r: _ok())
    return app


async def _ok() -> web.Response:
    return web.Response(text="ok")


class MetricsServer:
    """Serves `make_app` over TLS until `stop`; `port` is the bound one (0 picks a free port)."""

    def __init__(self, address: str, *, cert: Path, key: Path, authenticate: Authenticate,
                 registry: Registry = REGISTRY) -> None:
        self.host, self.port = split_host_port(address, default_host=None)
        self.cert, self.key = cert, key
        self.app = make_app(authenticate, registry=registry)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        self._runner = app_runner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ctx)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def serve_in_thread(self) -> threading.Event:
        """Serve from a thread of its own (for components without an event loop); the returned
        event is set once listening (`port` is then the bound one)."""
        ready = threading.Event()

        async def run() -> None:
            await self.start()
            ready.set()
            await asyncio.Event().wait()

        threading.Thread(target=lambda: asyncio.run(run()), name="metrics-server", daemon=True).start()
        return ready
