"""A small async client of the OCI Distribution API (aiohttp).

Used by the importer (push to DVCR, pull from another registry), `pull_disk` and the CLI.
Authentication: credentials are sent up front to DVCR (basic, or a platform bearer token);
against other registries a `401` with a `Bearer realm=...` challenge is answered with the
token flow (Docker Hub, Harbor, Distribution with token auth) using the pull secret.
Errors name the registry host and carry the registry's own error code.
"""

from __future__ import annotations

import base64
import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp

from controlplane.dvcr.digest import Digest, digest_of
from controlplane.dvcr.manifests import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


class RegistryClientError(Exception):
    def __init__(self, host: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{host}: {status} {code}: {message}")
        self.host, self.status, self.code, self.message = host, status, code, message


async def _error(host: str, resp: aiohttp.ClientResponse, what: str) -> RegistryClientError:
    code, message = "", ""
    try:
        doc = await resp.json(content_type=None)
        err = (doc.get("errors") or [{}])[0]
        code, message = str(err.get("code", "")), str(err.get("message", ""))
    except Exception:
        pass
    return RegistryClientError(host, resp.status, code or resp.reason or "", f"{what}: {message or resp.reason}")


class RegistryClient:
    def __init__(self, base_url: str, *, ssl_context: ssl.SSLContext | bool | None = None,
                 username: str | None = None, password: str | None = None, token: str | None = None,
                 preemptive: bool = True, timeout: float = 300.0) -> None:
        self.base = base_url.rstrip("/")
        self.host = self.base.split("://", 1)[-1]
        self.username, self.password, self.token = username, password, token
        self._ssl = ssl_context
        self._preemptive = preemptive
        self._bearer: dict[str, str] = {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True, limit=8),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout),
            auto_decompress=False)

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- auth ---------------------------------------------------------------------------------
    def _auth(self, scope: str) -> dict[str, str]:
        if scope in self._bearer:
            return {"Authorization": f"Bearer {self._bearer[scope]}"}
        if not self._preemptive:
            return {}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username is not None:
            raw = f"{self.username}:{self.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    async def _answer_challenge(self, header: str, scope: str) -> bool:
        scheme, _, params = header.partition(" ")
        if scheme.lower() == "basic":
            if self.username is None or self._preemptive:
                return False
            self._preemptive = True
            return True
        if scheme.lower() != "bearer":
            return False
        fields = dict(CHALLENGE_RE.findall(params))
        realm = fields.get("realm")
        if not realm:
            return False
        query = {k: v for k, v in (("service", fields.get("service")), ("scope", fields.get("scope") or scope)) if v}
        headers = {}
        if self.username is not None:
            raw = f"{self.username}:{self.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        async with self._session.get(f"{realm}?{urlencode(query)}", headers=headers) as r:
            if r.status != 200:
                raise await _error(self.host, r, "getting a registry token")
            doc = await r.json(content_type=None)
        self._bearer[scope] = doc.get("token") or doc.get("access_token") or ""
        return bool(self._bearer[scope])

    @contextlib.asynccontextmanager
    async def request(self, method: str, path: str, *, scope: str, headers: dict[str, str] | None = None,
                      data: Any = None, allow_redirects: bool = True) -> AsyncIterator[aiohttp.ClientResponse]:
        url = path if path.startswith(("http://", "https://")) else self.base + path
        for attempt in range(2):
            hdrs = {**self._auth(scope), **(headers or {})}
            resp = await self._session.request(method, url, headers=hdrs, data=data, allow_redirects=allow_redirects)
            if resp.status == 401 and attempt == 0 and not _is_stream(data):
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.release()
                if await self._answer_challenge(challenge, scope):
                    continue
                raise RegistryClientError(self.host, 401, "UNAUTHORIZED", "the registry refused the credentials")
            try:
                yield resp
            finally:
                resp.release()
            return

    # --- reads ---------------------------------------------------------------------------------
    async def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, Digest]:
        async with self.request("GET", f"/v2/{repo}/manifests/{reference}", scope=f"repository:{repo}:pull",
                                headers={"Accept": ACCEPT}) as r:
            if r.status != 200:
                raise await _error(self.host, r, f"manifest {repo}:{reference}")
            body = await r.read()
            media_type = r.headers.get("Content-Type", "").split(";")[0]
        return body, media_type, digest_of(body)

    async def blob_exists(self, repo: str, d: Digest) -> int | None:
        async with self.request("HEAD", f"/v2/{repo}/blobs/{d}", scope=f"repository:{repo}:pull") as r:
            if r.status == 404:
                return None
            if r.status != 200:
                raise await _error(self.host, r, f"blob {d}")
            return int(r.headers.get("Content-Length", "0"))

    @contextlib.asynccontextmanager
    async def blob(self, repo: str, d: Digest, *, offset: int = 0) -> AsyncIterator[aiohttp.ClientResponse]:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        async with self.request("GET", f"/v2/{repo}/blobs/{d}", scope=f"repository:{repo}:pull",
                                headers=headers) as r:
            if r.status not in (200, 206):
                raise await _error(self.host, r, f"blob {d} of {repo}")
            yield r

    async def tags(self, repo: str) -> list[str]:
        async with self.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull") as r:
            if r.status != 200:
                raise await _error(self.host, r, f"tags of {repo}")
            return list((await r.json()).get("tags") or [])

    # --- writes --------------------------------------------------------------------------------
    async def start_upload(self, repo: str) -> HttpBlobUpload:
        async with self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=f"repository:{repo}:push,pull") as r:
            if r.status != 202:
                raise await _error(self.host, r, f"starting an upload to {repo}")
            location = urljoin(self.base + "/", r.headers["Location"])
        return HttpBlobUpload(self, repo, location)

    async def put_blob(self, repo: str, data: bytes) -> Digest:
        d = digest_of(data)
        if await self.blob_exists(repo, d) == len(data):
            return d
        up = await self.start_upload(repo)
        await up.commit(d, final=data)
        return d

    async def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> Digest:
        async with self.request("PUT", f"/v2/{repo}/manifests/{reference}", scope=f"repository:{repo}:push,pull",
                                headers={"Content-Type": media_type}, data=body) as r:
            if r.status != 201:
                raise await _error(self.host, r, f"putting manifest {repo}:{reference}")
        return digest_of(body)

    async def delete_manifest(self, repo: str, reference: str) -> None:
        async with self.request("DELETE", f"/v2/{repo}/manifests/{reference}", scope=f"repository:{repo}:delete") as r:
            if r.status != 202:
                raise await _error(self.host, r, f"deleting {repo}:{reference}")


def _is_stream(data: Any) -> bool:
    return data is not None and not isinstance(data, bytes | str)


class HttpBlobUpload:
    """One upload session: stream the body (one PATCH), then commit with the digest."""

    def __init__(self, client: RegistryClient, repo: str, location: str) -> None:
        self.client, self.repo, self.location = client, repo, location

    def _url(self, **params: str) -> str:
        sep = "&" if "?" in self.location else "?"
        return self.location + (sep + urlencode(params) if params else "")

    async def write_stream(self, chunks: AsyncIterator[bytes]) -> None:
        async with self.client.request("PATCH", self.location, scope=f"repository:{self.repo}:push,pull",
                                       headers={"Content-Type": "application/octet-stream"}, data=chunks) as r:
            if r.status != 202:
                raise await _error(self.client.host, r, f"uploading to {self.repo}")
            self.location = urljoin(self.client.base + "/", r.headers.get("Location", self.location))

    async def commit(self, d: Digest, *, final: bytes = b"") -> None:
        headers = {"Content-Type": "application/octet-stream"}
        async with self.client.request("PUT", self._url(digest=str(d)), scope=f"repository:{self.repo}:push,pull",
                                       headers=headers, data=final) as r:
            if r.status != 201:
                raise await _error(self.client.host, r, f"committing blob {d} to {self.repo}")

    async def abort(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, RegistryClientError):
            async with self.client.request("DELETE", self.location, scope=f"repository:{self.repo}:push,pull"):
                pass
