"""The authorization step of every authenticated request: its attributes are decided by the
server's authorizer chain; a refusal is kube-apiserver's 403; an allowed request runs with
its user in `escalation.REQUEST_USER` (so role and binding writes are checked against it);
every request, answered or refused, ends as one audit line at the level the audit policy
gives it (`audit_policy.py`), and so does a request whose authentication failed
(`record_unauthenticated`). Impersonation headers, once allowed, make the request the
impersonated user's (`impersonation.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from controlplane.apiserver import bodies, errors
from controlplane.apiserver.auth import User
from controlplane.apiserver.authz import audit
from controlplane.apiserver.authz.audit_policy import METADATA_ONLY, Level, Policy
from controlplane.apiserver.authz.authorizer import Authorizer, with_authenticated
from controlplane.apiserver.authz.escalation import REQUEST_USER
from controlplane.apiserver.authz.impersonation import impersonated
from controlplane.apiserver.authz.requests import attributes_of, forbidden, request_attributes
from controlplane.apiserver.authz.rules import Attributes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AuthorizationMiddleware:
    def __init__(self, authorizer: Authorizer, audit_log: audit.AuditLog | None = None, *,
                 policy: Policy = METADATA_ONLY) -> None:
        self.authorizer = authorizer
        self.audit = audit_log
        self.policy = policy

    @web.middleware
    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        received = audit._now() if self.audit is not None else ""
        original: User = request["user"]
        try:
            acting = impersonated(request, original, self.authorizer)
        except errors.ApiError as exc:
            attrs = await request_attributes(request, original.name, original.groups)
            self._record(request, attrs, exc.code, received, allowed=False, reason=exc.message)
            raise
        user = original if acting is None else acting
        request["user"] = user
        attrs = await request_attributes(request, user.name, user.groups)
        decision = self.authorizer.authorize(attrs)
        if self.audit is not None and self.policy.level(attrs) >= Level.REQUEST:
            request[bodies.KEEP_REQUEST_OBJECT] = True
        code = 500
        response: web.StreamResponse | None = None
        try:
            if not decision.allowed:
                raise forbidden(attrs, decision.reason)
            token = REQUEST_USER.set((attrs.user, attrs.groups))
            try:
                response = await handler(request)
            finally:
                REQUEST_USER.reset(token)
            code = response.status
            return response
        except errors.ApiError as exc:
            code = exc.code
            raise
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            self._record(request, attrs, code, received, allowed=decision.allowed, reason=decision.reason,
                         impersonator=original if acting is not None else None, response=response)

    def record_unauthenticated(self, request: web.Request) -> None:
        """The audit line of a request refused 401 (no user: its credentials were not accepted)."""
        if self.audit is not None:
            attrs = attributes_of(request.method, request.path, request.query, "", ())
            self._record(request, attrs, 401, audit._now(), allowed=None, reason="")

    def _record(self, request: web.Request, attrs: Attributes, code: int, received: str, *, allowed: bool | None,
                reason: str, impersonator: User | None = None, response: web.StreamResponse | None = None) -> None:
        if self.audit is None:
            return
        level = self.policy.level(attrs)
        if level is Level.NONE:
            return
        entry = audit.event(attrs, code=code, uri=request.path_qs, source=request.remote or "",
                            user_agent=request.headers.get("User-Agent", ""), received=received, allowed=allowed,
                            reason=reason, level=level.api_name)
        if impersonator is not None:  # kube's form: `user` is who asked, `impersonatedUser` who it acted as
            entry["impersonatedUser"] = entry["user"]
            entry["user"] = {"username": impersonator.name, "groups": list(with_authenticated(impersonator.groups))}
        if level >= Level.REQUEST and bodies.REQUEST_OBJECT in request:
            entry["requestObject"] = request[bodies.REQUEST_OBJECT]
        if level >= Level.REQUEST_RESPONSE and isinstance(response, web.Response) and response.body is not None:
            body = _json_body(response.content_type, response.body)
            if body is not None:
                entry["responseObject"] = body
        self.audit.record(entry)


def _json_body(content_type: str, raw: Any) -> Any:
    """A JSON answer as an object; None for other content types (protobuf) and bad JSON."""
    if not isinstance(raw, bytes | bytearray) or "json" not in content_type:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
