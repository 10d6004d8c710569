"""DVCR's admin endpoint: garbage collection on demand (what `dvp dvcr gc` calls).

    POST /dvcr/v1/gc?dryRun=true|false[&graceSeconds=N]   (admin role) -> the GC report as JSON
        graceSeconds: keep blobs younger than N seconds (default: the server's setting); the
        controllers pass 0 when no import or upload is pushing, so a deleted image is gone at once
    GET  /dvcr/v1/gc                      (admin role) -> {"running": bool} (what `dvp upgrade` checks)

A second collection while one runs is refused with 409.
"""

from __future__ import annotations

import dataclasses

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
        settings = self.settings
        if "graceSeconds" in request.query:
            try:
                grace = float(request.query["graceSeconds"])
                if not grace >= 0:
                    raise ValueError
            except ValueError:
                return error_response(RegistryError("UNSUPPORTED", f"graceSeconds: {request.query['graceSeconds']!r} "
                                                     "is not a number of seconds >= 0", status=400))
            settings = dataclasses.replace(settings, grace_seconds=grace)
        if self._running:
            return error_response(RegistryError("UNSUPPORTED", "garbage collection is already running", status=409))
        self._running = True
        try:
            report = await gc.run(self.store, settings, dry_run=dry_run)
        except TimeoutError:
            return error_response(RegistryError("UNSUPPORTED", "writes in flight did not finish in time; garbage "
                                                "collection did not run, retry later", status=503))
        finally:
            self._running = False
        return web.Response(body=orjson.dumps(report.to_json()), headers={"Content-Type": "application/json"})
