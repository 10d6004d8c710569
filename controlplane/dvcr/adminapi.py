"""DVCR's admin endpoint: garbage collection on demand (what `dvp dvcr gc` calls).

    POST /dvcr/v1/gc?dryRun=true|false    (admin role) -> the GC report as JSON
    GET  /dvcr/v1/gc                      (admin role) -> {"running": bool} (what `dvp upgrade` checks)

A second collection while one runs is refused with 409.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from controlplane.dvcr import gc
from controlplane.dvcr.app import RegistryApp, error_response
from controlplane.dvcr.errors import RegistryError
from controlplane.dvcr.store import RegistryStore


class AdminApi:
    def __init__(self, store: RegistryStore, registry: RegistryApp, settings: gc.GcSettings) -> None:
        self.store, self.registry, self.settings = store, registry, settings
        self._running = False

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/dvcr/v1/gc", self._gc)
        app.router.add_get("/dvcr/v1/gc", self._gc_status)

    async def _gc_status(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.registry.identify(request, "admin")
        except RegistryError as exc:
            return error_response(exc)
        running = self._running or self.store.gate.read_only
        return web.Response(body=orjson.dumps({"running": bool(running)}), headers={"Content-Type": "application/json"})

    async def _gc(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.registry.identify(request, "admin")
        except RegistryError as exc:
            return error_response(exc)
        dry_run = request.query.get("dryRun", "false").lower() in ("1", "true", "yes")
        if self._running:
            return error_response(RegistryError("UNSUPPORTED", "garbage collection is already running", status=409))
        self._running = True
        try:
            report = await gc.run(self.store, self.settings, dry_run=dry_run)
        except TimeoutError:
            return error_response(RegistryError("UNSUPPORTED", "writes in flight did not finish in time; garbage "
                                                "collection did not run, retry later", status=503))
        finally:
            self._running = False
        return web.Response(body=orjson.dumps(report.to_json()), headers={"Content-Type": "application/json"})
