"""Client calls of DVCR's own API (beside the registry API): upload URLs and GC.

The image controller uses `create_upload` for an `Upload` data source and polls
`upload_status` to fill the image's status (progress, then Ready or Failed); `dvp dvcr gc`
uses `run_gc`. All go through a `DvcrConnection` (URL, CA, credentials).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from controlplane.dvcr.credentials import DvcrConnection


class UploadClientError(Exception):
    pass


async def _call(conn: DvcrConnection, method: str, path: str, *, json_body: Any = None,
                params: dict[str, str] | None = None, ok: tuple[int, ...] = (200,)) -> Any:
    headers = {}
    auth = conn.authorization()
    if auth:
        headers["Authorization"] = auth
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=conn.ssl_context())) as s:
        try:
            async with s.request(method, conn.url + path, json=json_body, params=params, headers=headers) as r:
                doc = await r.json(content_type=None)
                if r.status not in ok:
                    err = (doc.get("errors") or [{}])[0] if isinstance(doc, dict) else {}
                    raise UploadClientError(f"{conn.registry}: {method} {path}: {r.status} "
                                            f"{err.get('code', '')}: {err.get('message', doc)}")
                return doc
        except aiohttp.ClientError as exc:
            raise UploadClientError(f"{conn.registry}: {type(exc).__name__}: {exc}") from exc


async def create_upload(conn: DvcrConnection, repository: str, *, tag: str = "latest",
                        checksums: dict[str, str] | None = None, ttl: float | None = None) -> dict[str, Any]:
    """A new upload URL for repository:tag -> {"id", "url", "expiresAt", "phase", ...}."""
    body: dict[str, Any] = {"repository": repository, "tag": tag, "checksums": checksums or {}}
    if ttl:
        body["ttlSeconds"] = ttl
    doc: dict[str, Any] = await _call(conn, "POST", "/dvcr/v1/uploads", json_body=body, ok=(201,))
    return doc


async def upload_status(conn: DvcrConnection, upload_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = await _call(conn, "GET", f"/dvcr/v1/uploads/{upload_id}")
    return doc


async def cancel_upload(conn: DvcrConnection, upload_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = await _call(conn, "DELETE", f"/dvcr/v1/uploads/{upload_id}")
    return doc


async def gc_status(conn: DvcrConnection) -> dict[str, Any]:
    """{"running": bool}: whether a garbage collection holds the registry read-only now."""
    doc: dict[str, Any] = await _call(conn, "GET", "/dvcr/v1/gc")
    return doc


async def run_gc(conn: DvcrConnection, *, dry_run: bool) -> dict[str, Any]:
    doc: dict[str, Any] = await _call(conn, "POST", "/dvcr/v1/gc", params={"dryRun": str(dry_run).lower()})
    return doc
