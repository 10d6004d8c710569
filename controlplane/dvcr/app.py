"""The DVCR aiohttp application: routing of `/v2/` paths (repository names contain '/'),
authentication and authorisation, and errors in the spec's JSON format.

Every `/v2/` request must carry valid credentials (401 with `WWW-Authenticate` otherwise);
reads need the `pull` role, writes `push`, deletes of tags, manifests and blobs `admin`; a
platform user's pull is also checked against the API server's RBAC per repository
(`access.py`). Extra routes (the upload URLs, the admin API) are mounted by `server` through
`extra_routes`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from controlplane.common.pki import fingerprint
from controlplane.dvcr import metrics
from controlplane.dvcr.access import PullAccess
from controlplane.dvcr.auth import Authenticator, AuthError, Identity
from controlplane.dvcr.authguard import TooManyAttempts
from controlplane.dvcr.digest import check_name
from controlplane.dvcr.errors import RegistryError, no_space, storage_full
from controlplane.dvcr.handlers_blobs import BlobHandlers
from controlplane.dvcr.handlers_manifests import ManifestHandlers
from controlplane.dvcr.store import RegistryStore

log = logging.getLogger(__name__)

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
BASIC_REALM = 'Basic realm="dvcr"'
TOKEN_PATH = "/auth/token"
UPLOAD_PATH_PREFIX = "/upload/"
"""Upload URLs (uploadapi.py): the rest of the path is the URL's token."""
Handler = Callable[..., Awaitable[web.StreamResponse]]

ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/v2/?$"), "base"),
    (re.compile(r"^/v2/_catalog$"), "catalog"),
    (re.compile(r"^/v2/(?P<name>.+)/tags/list$"), "tags"),
    (re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$"), "manifests"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$"), "upload_start"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)$"), "upload"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$"), "blobs"),
    (re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$"), "referrers"),
]
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def error_response(exc: RegistryError, request: web.Request | None = None) -> web.Response:
    headers = CIMultiDict({**API_VERSION, **exc.headers, "Content-Type": "application/json"})
    if exc.status == 401:
        # Token-aware clients (skopeo, containerd) take the first challenge: the token endpoint,
        # where they log in with basic credentials or a platform token. Others use basic.
        if request is not None:
            headers.add("WWW-Authenticate", f'Bearer realm="https://{request.host}{TOKEN_PATH}",service="dvcr"')
        headers.add("WWW-Authenticate", BASIC_REALM)
    return web.Response(status=exc.status, body=orjson.dumps(exc.body()), headers=headers)



def loggable_path(path: str) -> str:
    """A request path as logs may show it: an upload URL's token (`/upload/<token>`, the only
    credential its holder needs) replaced by its fingerprint, as the ticket's own log line names it."""
    if path.startswith(UPLOAD_PATH_PREFIX):
        return UPLOAD_PATH_PREFIX + fingerprint(path[len(UPLOAD_PATH_PREFIX):])
    return path


class RegistryApp:
    def __init__(self, store: RegistryStore, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth
        # platform users' pulls, per repository, by the API server's RBAC (with an API server only)
        self.access = PullAccess(auth.may_get) if auth.kubeconfig is not None else None
        self.blobs = BlobHandlers(store)
        self.manifests = ManifestHandlers(store)
        self.table: dict[tuple[str, str], Handler] = {
            ("catalog", "GET"): lambda r, **kw: self.manifests.catalog(r),
            ("tags", "GET"): self.manifests.tags,
            ("manifests", "GET"): self.manifests.get,
            ("manifests", "HEAD"): self.manifests.get,
            ("manifests", "PUT"): self.manifests.put,
            ("manifests", "DELETE"): self.manifests.delete,
            ("upload_start", "POST"): self.blobs.start,
            ("upload", "PATCH"): self.blobs.patch,
            ("upload", "PUT"): self.blobs.finish,
            ("upload", "GET"): self.blobs.status,
            ("upload", "DELETE"): self.blobs.cancel,
            ("blobs", "GET"): self.blobs.get,
            ("blobs", "HEAD"): self.blobs.get,
            ("blobs", "DELETE"): self.blobs.delete,
            ("referrers", "GET"): self.manifests.referrers,
        }

    def make(self, *, extra_routes: Callable[[web.Application], None] | None = None) -> web.Application:
        app = web.Application(middlewares=[metrics.middleware, self._errors], client_max_size=1024 ** 4)
        app.router.add_route("*", "/v2/{tail:.*}", self.dispatch)
        app.router.add_route("*", "/v2", self.dispatch)
        app.router.add_get("/healthz", self._health)
        app.router.add_get(TOKEN_PATH, self._token)
        if extra_routes is not None:
            extra_routes(app)
        return app

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except RegistryError as exc:
            if exc.status >= 500:
                log.error("dvcr: %s %s: %s", request.method, loggable_path(request.path), exc)
            return error_response(exc, request)
        except web.HTTPException:
            raise
        except (ConnectionResetError, ConnectionError) as exc:
            log.info("dvcr: %s %s: client went away (%s)", request.method, loggable_path(request.path), type(exc).__name__)
            raise
        except OSError as exc:
            if not no_space(exc):
                log.exception("dvcr: %s %s failed", request.method, loggable_path(request.path))
                return error_response(RegistryError("UNKNOWN", f"internal error: {type(exc).__name__}: {exc}",
                                                    status=500))
            log.error("dvcr: %s %s: the storage is full; nothing of it was stored", request.method, loggable_path(request.path))
            return error_response(storage_full(), request)
        except Exception as exc:
            log.exception("dvcr: %s %s failed", request.method, loggable_path(request.path))
            return error_response(RegistryError("UNKNOWN", f"internal error: {type(exc).__name__}: {exc}",
                                                status=500))
        if not resp.prepared:
            for k, v in API_VERSION.items():
                resp.headers.setdefault(k, v)
        return resp

    async def _token(self, request: web.Request) -> web.StreamResponse:
        """Docker token endpoint: credentials in, a short-lived DVCR access token out."""
        identity = await self.identify(request, "pull")
        ttl = 3600
        token = self.auth.issue(identity, ttl=ttl)
        doc = {"token": token, "access_token": token, "expires_in": ttl,
               "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        return web.Response(body=orjson.dumps(doc), headers={"Content-Type": "application/json",
                                                             "Cache-Control": "no-store"})

    async def identify(self, request: web.Request, role: str) -> Identity:
        """The caller, who must hold `role`; 401 without (valid) credentials, 403 without the role."""
        try:
            identity = await self.auth.authenticate(request.headers.get("Authorization"), request.remote or "")
        except TooManyAttempts as exc:
            raise RegistryError("TOOMANYREQUESTS", str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
        except AuthError as exc:
            raise RegistryError("UNAUTHORIZED", str(exc)) from exc
        if identity is None:
            raise RegistryError("UNAUTHORIZED", "authentication required (HTTP basic or a platform bearer token)")
        if not identity.may(role):
            raise RegistryError("DENIED", f"user {identity.name!r} (role {identity.role}) may not {role} here",
                                detail={"user": identity.name, "needs": role})
        return identity

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        role = "push" if request.method in WRITE_METHODS else "pull"
        if request.method == "DELETE" and "/blobs/uploads/" not in path:
            role = "admin"  # deleting tags, manifests and blobs; cancelling one's own upload is a push
        identity = await self.identify(request, role)
        for pattern, route in ROUTES:
            m = pattern.match(path)
            if m is None:
                continue
            if route == "base":
                if request.method not in ("GET", "HEAD"):
                    break
                return web.Response(status=200, body=b"{}", headers={"Content-Type": "application/json"})
            handler = self.table.get((route, request.method))
            if handler is None:
                raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on {path}", status=405)
            kwargs: dict[str, Any] = m.groupdict()
            if "name" in kwargs:
                check_name(kwargs["name"])
            if role == "pull" and self.access is not None:
                refused = await self.access.why_not(identity, kwargs.get("name"))
                if refused:
                    raise RegistryError("DENIED", refused, detail={"user": identity.name})
            return await handler(request, **kwargs)
        raise RegistryError("UNSUPPORTED", f"no such endpoint: {request.method} {path}", status=404)
