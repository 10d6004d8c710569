"""A request as authorization attributes (kube's `RequestInfo`), and the 403 kube-apiserver
answers when they are refused.

Verbs: GET is `get` with a name, `list` without, `watch` with `?watch=true`; POST `create`;
PUT `update`; PATCH `patch`; DELETE `delete` with a name, `deletecollection` without.
Paths outside `/api/...` and `/apis/<group>/<version>/...` are non-resource requests whose
verb is the lower-cased method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from controlplane.apiserver import errors, routing
from controlplane.apiserver.authz.authorizer import with_authenticated
from controlplane.apiserver.authz.node import node_name
from controlplane.apiserver.authz.rules import Attributes

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
_NAMED_ON_CREATE = {("", "nodes"), ("coordination.k8s.io", "leases"), ("virtualization.deckhouse.io", "nodeusbdevices")}


def verb_of(method: str, name: str, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        return "watch" if watch else "get" if name else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return _METHOD_VERBS.get(method, method.lower())


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def attributes_of(method: str, path: str, query: Mapping[str, str], user: str, groups: tuple[str, ...]) -> Attributes:
    groups = with_authenticated(groups)
    path = path.rstrip("/") or "/"
    target = routing.parse(path)
    if target is None:
        return Attributes(user, groups, "get" if method == "HEAD" else method.lower(), resource_request=False,
                          path=path)
    return Attributes(user, groups, verb_of(method, target.name, _truthy(query.get("watch"))),
                      group=target.group, version=target.version, resource=target.plural,
                      subresource=target.subresource, namespace=target.namespace, name=target.name,
                      label_selector=query.get("labelSelector", ""))


async def request_attributes(request: web.Request, user: str, groups: tuple[str, ...]) -> Attributes:
    attrs = attributes_of(request.method, request.path, request.query, user, groups)
    # a node creating its Node, Lease or NodeUSBDevices is allowed only under its own name: read it from the body
    if attrs.verb == "create" and (attrs.group, attrs.resource) in _NAMED_ON_CREATE and node_name(user, groups):
        name = _body_name(await request.read())
        attrs = Attributes(**{**attrs.__dict__, "name": name})
    return attrs


def _body_name(raw: bytes) -> str:
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    meta = body.get("metadata") if isinstance(body, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def forbidden_message(attrs: Attributes) -> str:
    """kube-apiserver's words for a refused request (`responsewriters.forbiddenMessage`)."""
    if not attrs.resource_request:
        return f'User "{attrs.user}" cannot {attrs.verb} path "{attrs.path}"'
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (f'User "{attrs.user}" cannot {attrs.verb} resource "{attrs.full_resource}" in API group '
            f'"{attrs.group}" {where}')


def forbidden(attrs: Attributes, reason: str = "") -> errors.ApiError:
    """403 Forbidden as kube-apiserver writes it, details naming the resource and object."""
    message = forbidden_message(attrs) + (f": {reason}" if reason else "")
    if not attrs.resource_request:
        return errors.ApiError(403, "Forbidden", f"forbidden: {message}", {})
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    details: dict[str, Any] = {"kind": attrs.resource}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.group:
        details["group"] = attrs.group
    return errors.ApiError(403, "Forbidden", f"{subject} is forbidden: {message}", details)
