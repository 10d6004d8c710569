"""HTTP handlers for manifests and content discovery (OCI Distribution).

    HEAD/GET/PUT/DELETE /v2/<name>/manifests/<tag|digest>
    GET                 /v2/<name>/tags/list?n=&last=     (Link: rel="next" when more)
    GET                 /v2/_catalog?n=&last=
    GET                 /v2/<name>/referrers/<digest>?artifactType=
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import orjson
from aiohttp import web

from controlplane.dvcr import manifests
from controlplane.dvcr.digest import check_name, parse_digest
from controlplane.dvcr.errors import RegistryError
from controlplane.dvcr.store import RegistryStore


def paginate(request: web.Request, items: list[str]) -> tuple[list[str], dict[str, str]]:
    """Apply `n` and `last`; return the page and a Link header when more items follow."""
    q = request.query
    last = q.get("last")
    if last:
        items = [i for i in items if i > last]
    if "n" not in q:
        return items, {}
    try:
        n = int(q["n"])
        if n < 0:
            raise ValueError
    except ValueError as exc:
        raise RegistryError("UNSUPPORTED", f"n={q['n']!r}: must be a non-negative integer", status=400) from exc
    page = items[:n]
    headers = {}
    if n and len(items) > n:
        headers["Link"] = f'<{request.path}?{urlencode({"n": n, "last": page[-1]})}>; rel="next"'
    return page, headers


def json_response(doc: object, *, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, headers={"Content-Type": content_type,
                                                                         **(headers or {})})


class ManifestHandlers:
    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    async def get(self, request: web.Request, name: str, reference: str) -> web.StreamResponse:
        rev, body = self.store.repos.get_manifest(name, reference)
        headers = {"Content-Type": rev.media_type, "Docker-Content-Digest": str(rev.digest),
                   "Content-Length": str(len(body)), "ETag": f'"{rev.digest}"'}
        if request.method == "HEAD":
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    async def put(self, request: web.Request, name: str, reference: str) -> web.StreamResponse:
        check_name(name)
        if request.content_length is not None and request.content_length > manifests.MAX_MANIFEST:
            raise RegistryError("SIZE_INVALID", f"manifest is {request.content_length} bytes; the limit is "
                                f"{manifests.MAX_MANIFEST}", status=413)
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > manifests.MAX_MANIFEST:
                raise RegistryError("SIZE_INVALID", f"manifest is over the {manifests.MAX_MANIFEST} byte limit",
                                    status=413)
        loop = asyncio.get_running_loop()
        async with self.store.gate.write():
            d, parsed = await loop.run_in_executor(None, self.store.repos.put_manifest, name, reference, bytes(body),
                                                   request.headers.get("Content-Type"))
        headers = {"Location": f"/v2/{name}/manifests/{d}", "Docker-Content-Digest": str(d), "Content-Length": "0"}
        if parsed.subject is not None:
            headers["OCI-Subject"] = str(parsed.subject.digest)
        return web.Response(status=201, headers=headers)

    async def delete(self, request: web.Request, name: str, reference: str) -> web.StreamResponse:
        async with self.store.gate.write():
            self.store.repos.delete_manifest(name, reference)
        return web.Response(status=202, headers={"Content-Length": "0"})

    async def tags(self, request: web.Request, name: str) -> web.StreamResponse:
        check_name(name)
        page, headers = paginate(request, self.store.repos.tags(name))
        return json_response({"name": name, "tags": page}, headers=headers)

    async def catalog(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        names = await loop.run_in_executor(None, self.store.repos.catalog)
        page, headers = paginate(request, names)
        return json_response({"repositories": page}, headers=headers)

    async def referrers(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        check_name(name)
        subject = parse_digest(digest)
        artifact_type = request.query.get("artifactType")
        found = self.store.repos.referrers(name, subject, artifact_type=artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        return json_response({"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": found},
                             headers=headers, content_type=manifests.OCI_INDEX)
