"""The authorization step of every authenticated request: its attributes are decided by the
server's authorizer chain; a refusal is kube-apiserver's 403; an allowed request runs with
its user in `escalation.REQUEST_USER` (so role and binding writes are checked against it);
every request, answered or refused, ends as one audit line. Impersonation headers, once
allowed, make the request the impersonated user's (`impersonation.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from controlplane.apiserver import errors
from controlplane.apiserver.auth import User
from controlplane.apiserver.authz import audit
from controlplane.apiserver.authz.authorizer import Authorizer, with_authenticated
from controlplane.apiserver.authz.escalation import REQUEST_USER
from controlplane.apiserver.authz.impersonation import impersonated
from controlplane.apiserver.authz.requests import forbidden, request_attributes
from controlplane.apiserver.authz.rules import Attributes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AuthorizationMiddleware:
    def __init__(self, authorizer: Authorizer, audit_log: audit.AuditLog | None = None) -> None:
        self.authorizer = authorizer
        self.audit = audit_log

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
        code = 500
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
                         impersonator=original if acting is not None else None)

    def _record(self, request: web.Request, attrs: Attributes, code: int, received: str, *, allowed: bool,
                reason: str, impersonator: User | None = None) -> None:
        if self.audit is None:
            return
        entry = audit.event(attrs, code=code, uri=request.path_qs, source=request.remote or "",
                            user_agent=request.headers.get("User-Agent", ""), received=received, allowed=allowed,
                            reason=reason)
        if impersonator is not None:  # kube's form: `user` is who asked, `impersonatedUser` who it acted as
            entry["impersonatedUser"] = entry["user"]
            entry["user"] = {"username": impersonator.name, "groups": list(with_authenticated(impersonator.groups))}
        self.audit.record(entry)
