"""The aiohttp application: authentication, discovery, OpenAPI, health, and the resource API.

Other components (DVCR, the console proxy) can mount extra routes with `extra_routes` or
register handlers for API groups of their own through `APIServer.add_group_handler`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from controlplane.apiserver import (
    bodies,
    deprecation,
    discovery,
    errors,
    metrics,
    openapi,
    openapi_pb,
    routing,
)
from controlplane.apiserver.auth import BearerAuthenticator, User
from controlplane.apiserver.certauth import ClientCertAuthenticator, peer_certificate
from controlplane.apiserver.handlers import ResourceHandlers, error_response, json_response
from controlplane.apiserver.health import HealthChecks
from controlplane.apiserver.openapi_v3 import PREFIX as OPENAPI_V3
from controlplane.apiserver.openapi_v3 import OpenAPIV3
from controlplane.apiserver.protobuf import http as protobuf_http
from controlplane.apiserver.resources import Registry

log = logging.getLogger(__name__)

GroupHandler = Callable[[web.Request, routing.Target, User], Awaitable[web.StreamResponse]]


class ApiApp:
    def __init__(self, registry: Registry, handlers: ResourceHandlers, auth: BearerAuthenticator, *,
                 server_address: str, ready: Callable[[], bool], limits: bodies.BodyLimits | None = None,
                 certs: ClientCertAuthenticator | None = None) -> None:
        self.registry = registry
        self.handlers = handlers
        self.auth = auth
        self.certs = certs
        self.server_address = server_address
        self.ready = ready
        self.limits = limits or bodies.DEFAULT_LIMITS
        # under a supervisor: the data directory whose component registries /metrics appends
        self.component_metrics: Path | None = None
        self.group_handlers: dict[tuple[str, str], GroupHandler] = {}
        # (group, plural, subresource) served by a handler of its own (serviceaccounts/token)
        self.subresource_handlers: dict[tuple[str, str, str], GroupHandler] = {}
        # run after authentication, around the handler (authorization, audit: `authz.middleware`)
        self.authenticated_middlewares: list[Any] = []
        # told of each request refused 401 (the audit log records those too)
        self.unauthenticated_hooks: list[Callable[[web.Request], None]] = []
        self.extra_discovery: dict[tuple[str, str], dict[str, Any]] = {}
        self._openapi: tuple[bytes, bytes] | None = None
        self.health = HealthChecks()
        self.openapi_v3 = OpenAPIV3(registry)
        registry.on_change.append(self._invalidate)

    def _invalidate(self) -> None:
        self._openapi = None

    def add_group(self, group: str, version: str, resources: list[dict[str, Any]], handler: GroupHandler) -> None:
        """Serve an aggregated-style API group (e.g. subresources.virtualization.deckhouse.io)."""
        self.group_handlers[(group, version)] = handler
        self.extra_discovery[(group, version)] = {
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}", "resources": resources}

    def make(self) -> web.Application:
        record = metrics.middleware(self._known)
        app = web.Application(middlewares=[record, bodies.middleware, self._middleware,
                                           *self.authenticated_middlewares],
                              client_max_size=self.limits.max_request_bytes)
        app[bodies.LIMITS_KEY] = self.limits
        app.on_response_prepare.append(deprecation.on_response_prepare)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def _known(self, target: routing.Target) -> bool:
        return (target.group, target.version) in self.group_handlers or \
            self.registry.get(target.group, target.version, target.plural) is not None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
        user = self._authenticate(request)
        if user is None:
            for hook in self.unauthenticated_hooks:
                hook(request)
            return error_response(errors.unauthorized())
        request["user"] = user
        try:
            return await handler(request)
        except errors.ApiError as exc:
            return error_response(exc)
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.path)
            return error_response(errors.internal(f"internal error: {type(exc).__name__}: {exc}"))

    def _authenticate(self, request: web.Request) -> User | None:
        """A verified client certificate first, then a bearer token (kube-apiserver's order)."""
        if self.certs is not None:
            user = self.certs.authenticate(peer_certificate(request))
            if user is not None:
                return user
        return self.auth.authenticate(request.headers.get("Authorization"))

    def _openapi_docs(self) -> tuple[bytes, bytes]:
        if self._openapi is None:
            import orjson

            doc = openapi.build(self.registry)
            self._openapi = (orjson.dumps(doc), openapi_pb.document(doc))
        return self._openapi

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if request.method == "GET":
            if path == "/metrics":
                return await metrics.response(self.component_metrics)
            simple = self._simple_get(request, path)
            if simple is not None:
                return simple
        target = routing.parse(path)
        if target is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        custom = self.group_handlers.get((target.group, target.version))
        if custom is not None:
            return await custom(request, target, request["user"])
        info = self.registry.get(target.group, target.version, target.plural)
        if info is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if info.namespaced != bool(target.namespace) and target.name:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        special = self.subresource_handlers.get((target.group, target.plural, target.subresource))
        if special is not None and target.name:
            return await special(request, target, request["user"])
        deprecation.mark(request, info)
        return await protobuf_http.handle(request, info, target, self.handlers.handle)

    def _simple_get(self, request: web.Request, path: str) -> web.StreamResponse | None:
        if path == "/version":
            return json_response(discovery.version_info())
        probe = self.health.handle(request, path)
        if probe is not None:
            return probe
        if path == "/api":
            return json_response(discovery.core_versions(self.server_address))
        if path == "/apis":
            doc = discovery.group_list(self.registry)
            for (group, version) in self.extra_discovery:
                entry = {"groupVersion": f"{group}/{version}", "version": version}
                doc["groups"].append({"name": group, "versions": [entry], "preferredVersion": entry})
            return json_response(doc)
        if path.startswith(OPENAPI_V3):
            return self.openapi_v3.handle(request, path)
        if path == "/openapi/v2":
            json_doc, pb_doc = self._openapi_docs()
            if openapi_pb.MEDIA_TYPE in request.headers.get("Accept", "") or "protobuf" in request.headers.get("Accept", ""):
                return web.Response(body=pb_doc, content_type="application/octet-stream")
            return json_response(json_doc)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            found = discovery.resource_list(self.registry, "", parts[1])
            if found is None:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(found)
        if parts[0] == "apis" and len(parts) in (2, 3):
            if len(parts) == 3 and (parts[1], parts[2]) in self.extra_discovery:
                return json_response(self.extra_discovery[(parts[1], parts[2])])
            if len(parts) == 2:
                extra = [v for (g, v) in self.extra_discovery if g == parts[1]]
                if extra:
                    entries = [{"groupVersion": f"{parts[1]}/{v}", "version": v} for v in extra]
                    return json_response({"kind": "APIGroup", "apiVersion": "v1", "name": parts[1],
                                          "versions": entries, "preferredVersion": entries[0]})
            found = discovery.api_group(self.registry, parts[1]) if len(parts) == 2 \
                else discovery.resource_list(self.registry, parts[1], parts[2])
            if found is None:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(found)
        return None
