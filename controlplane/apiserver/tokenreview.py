"""`authentication.k8s.io/v1` TokenReview: lets other components (DVCR, the node handler's
console endpoint) check a bearer token against the API server, as they would on a real
cluster. Only `create` is served; the answer carries the user name and groups."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from controlplane.apiserver import errors
from controlplane.apiserver.auth import BearerAuthenticator, User
from controlplane.apiserver.handlers import json_response
from controlplane.apiserver.routing import Target

GROUP, VERSION = "authentication.k8s.io", "v1"
RESOURCES: list[dict[str, Any]] = [{"name": "tokenreviews", "singularName": "tokenreview", "namespaced": False,
                                    "kind": "TokenReview", "verbs": ["create"]}]


def handler(auth: BearerAuthenticator) -> Any:
    async def handle(request: web.Request, target: Target, user: User) -> web.StreamResponse:
        if target.plural != "tokenreviews" or target.name or request.method != "POST":
            raise errors.method_not_allowed(request.method, f"{target.plural}.{GROUP}")
        try:
            body = orjson.loads(await request.read())
            token = body["spec"]["token"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise errors.bad_request("a TokenReview needs spec.token") from exc
        found = auth.authenticate(f"Bearer {token}")
        status: dict[str, Any] = {"authenticated": found is not None}
        if found is not None:
            status["user"] = {"username": found.name, "groups": list(found.groups)}
        else:
            status["error"] = "invalid bearer token"
        return json_response({"apiVersion": f"{GROUP}/{VERSION}", "kind": "TokenReview", "metadata": {},
                              "spec": body["spec"], "status": status}, 201)

    return handle
