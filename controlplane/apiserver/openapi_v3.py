"""`/openapi/v3`: the discovery document and one OpenAPI 3.0 document per group-version, as
kube-apiserver serves them.

    GET /openapi/v3                       {"paths": {"apis/<g>/<v>": {"serverRelativeURL":
                                           "/openapi/v3/apis/<g>/<v>?hash=<HASH>"}, "api/v1": ...}}
    GET /openapi/v3/apis/<g>/<v>?hash=H   the document; `ETag: "<HASH>"`; with the current hash it is
                                          cacheable for good (`Cache-Control: public, immutable`), an
                                          old hash is redirected (301) to the current one, and
                                          `If-None-Match` with the current ETag answers 304

kubectl 1.24+ reads these for `explain` and for finding which query parameters the server
takes. Schemas come from the same structural schemas as `/openapi/v2` (CRD schemas and the
built-in kinds), but in their v3 form: `nullable`, `anyOf` and friends are kept. Documents
are built once per registry change and cached with their hash.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from typing import Any

import orjson
from aiohttp import web

from controlplane.apiserver import errors
from controlplane.apiserver.openapi import (
    COMMON_DEFINITIONS,
    LIST_META,
    OBJECT_META,
    OBJECT_META_SCHEMA,
    definition_name,
    list_definition,
)
from controlplane.apiserver.openapi_paths import PathBuilder, base_path
from controlplane.apiserver.resources import Registry, ResourceInfo
from controlplane.common.version import __version__

PREFIX = "/openapi/v3"
PROTOBUF = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
_BUILDER = PathBuilder(v3=True)


def _gv_key(info: ResourceInfo) -> str:
    return base_path(info).lstrip("/")


def kind_schema(info: ResourceInfo) -> dict[str, Any]:
    schema = copy.deepcopy(info.raw_schema or {"type": "object"})
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("type", "object")
    props = dict(schema.get("properties") or {})
    props["metadata"] = {"allOf": [_BUILDER.ref(OBJECT_META)], "default": {},
                         "description": "Standard object's metadata."}
    props.setdefault("apiVersion", {"type": "string", "description": "APIVersion of this representation."})
    props.setdefault("kind", {"type": "string", "description": "Kind of this object."})
    schema["properties"] = props
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [{"group": info.group, "kind": info.kind, "version": info.version}]
    return schema


def group_version_document(infos: list[ResourceInfo]) -> dict[str, Any]:
    schemas: dict[str, Any] = {OBJECT_META: OBJECT_META_SCHEMA, **COMMON_DEFINITIONS}
    paths: dict[str, Any] = {}
    for info in sorted(infos, key=lambda i: i.plural):
        name = definition_name(info)
        schemas[name] = kind_schema(info)
        schemas[name + "List"] = list_definition(info, _BUILDER.ref(name), {"allOf": [_BUILDER.ref(LIST_META)],
                                                                            "default": {}})
        paths.update(_BUILDER.resource_paths(info, base_path(info), name, name + "List"))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": __version__},
            "paths": dict(sorted(paths.items())), "components": {"schemas": dict(sorted(schemas.items()))}}


def _hash(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest().upper()


class OpenAPIV3:
    """Builds, caches and serves the v3 documents of a `Registry`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._docs: dict[str, tuple[bytes, str]] | None = None
        self._built_at = dt.datetime.now(dt.UTC)
        registry.on_change.append(self.invalidate)

    def invalidate(self) -> None:
        self._docs = None

    def documents(self) -> dict[str, tuple[bytes, str]]:
        """Every group-version's document bytes and hash, keyed like `apis/<g>/<v>`."""
        if self._docs is None:
            groups: dict[str, list[ResourceInfo]] = {}
            for info in self.registry.all():
                groups.setdefault(_gv_key(info), []).append(info)
            docs = {}
            for key, infos in sorted(groups.items()):
                data = orjson.dumps(group_version_document(infos))
                docs[key] = (data, _hash(data))
            self._docs = docs
            self._built_at = dt.datetime.now(dt.UTC)
        return self._docs

    def discovery(self) -> dict[str, Any]:
        return {"paths": {key: {"serverRelativeURL": f"{PREFIX}/{key}?hash={digest}"}
                          for key, (_data, digest) in self.documents().items()}}

    def handle(self, request: web.Request, path: str) -> web.StreamResponse | None:
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            return None
        if path == PREFIX:
            return web.Response(body=orjson.dumps(self.discovery()), content_type="application/json")
        key = path[len(PREFIX) + 1:]
        found = self.documents().get(key)
        if found is None:
            raise errors.ApiError(404, "NotFound", f"the server could not find the requested resource ({key})")
        accept = request.headers.get("Accept", "")
        if accept and not any(t.strip().split(";")[0] in ("application/json", "*/*", "application/*")
                              for t in accept.split(",")):
            raise errors.ApiError(406, "NotAcceptable", f"only application/json is served here, not {accept}; "
                                  f"{PROTOBUF} is not supported")
        data, digest = found
        etag = f'"{digest}"'
        asked = request.query.get("hash", "")
        headers = {"ETag": etag, "Vary": "Accept",
                   "Last-Modified": self._built_at.strftime("%a, %d %b %Y %H:%M:%S GMT")}
        if asked and asked != digest:
            raise web.HTTPMovedPermanently(f"{PREFIX}/{key}?hash={digest}")
        if asked:
            headers["Cache-Control"] = "public, immutable"
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
            headers["Expires"] = expires.strftime("%a, %d %b %Y %H:%M:%S GMT")
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            return web.Response(status=304, headers=headers)
        return web.Response(body=data, content_type="application/json", headers=headers)
