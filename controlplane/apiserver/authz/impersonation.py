"""Impersonation (`kubectl --as USER [--as-group G]`), as kube-apiserver does it: the
requester must be allowed `impersonate` on `users` (named USER) and on `groups` (each G);
the request then runs — and is authorized and audited — as that user, in the groups named
(plus `system:authenticated`). Refused impersonation is 403 naming what was refused."""

from __future__ import annotations

from aiohttp import web

from controlplane.apiserver.auth import User
from controlplane.apiserver.authz.authorizer import Authorizer, with_authenticated
from controlplane.apiserver.authz.requests import forbidden
from controlplane.apiserver.authz.rules import Attributes

USER_HEADER, GROUP_HEADER = "Impersonate-User", "Impersonate-Group"


def impersonated(request: web.Request, user: User, authorizer: Authorizer) -> User | None:
    """The user `request` asks to act as (after checking the requester may), or None."""
    target = request.headers.get(USER_HEADER)
    groups = tuple(request.headers.getall(GROUP_HEADER, []))
    if target is None:
        if groups:
            raise forbidden(_attrs(user, "groups", groups[0]), "requested groups without a user")
        return None
    checks = [("users", target), *(("groups", g) for g in groups)]
    for resource, name in checks:
        attrs = _attrs(user, resource, name)
        if not authorizer.authorize(attrs).allowed:
            raise forbidden(attrs)
    return User(target, with_authenticated(groups))


def _attrs(user: User, resource: str, name: str) -> Attributes:
    return Attributes(user.name, with_authenticated(user.groups), "impersonate", resource=resource, name=name)
