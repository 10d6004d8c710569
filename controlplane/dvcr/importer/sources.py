"""Where an image comes from: an HTTP(S) URL, another registry, a local file, an upload.

`await source.open()` gives an `Opened` stream of the source's bytes (as fetched: still
compressed, if it is) and its size when known. Every source names its host or path in its
errors and in `description` (which ends up in the `dvcr.deckhouse.io/source` annotation,
so it never holds credentials or a URL's query).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from controlplane.dvcr.client import RegistryClient, RegistryClientError
from controlplane.dvcr.digest import Digest
from controlplane.dvcr.importer import tarstream
from controlplane.dvcr.importer.decompress import Unpacker
from controlplane.dvcr.importer.errors import ImportFailed, format_error, redact_url, source_error
from controlplane.dvcr.importer.formats import FormatError
from controlplane.dvcr.manifests import DOCKER_LIST, OCI_INDEX

READ = 1 << 20


async def _noop() -> None:
    return None


@dataclass
class Opened:
    chunks: AsyncIterator[bytes]
    size: int | None
    close: Callable[[], Awaitable[None]] = field(default=_noop)


def ssl_context(ca_bundle: Path | None, *, insecure: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class HttpSource:
    def __init__(self, url: str, *, ca_bundle: Path | None = None, insecure: bool = False,
                 max_redirects: int = 10, bearer: str = "") -> None:
        if not url.startswith(("http://", "https://")):
            raise ImportFailed("InvalidSource", f"{url!r} is not an http:// or https:// URL")
        self.url = url
        self.ca_bundle, self.insecure, self.max_redirects = ca_bundle, insecure, max_redirects
        self.headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        self.description = f"http: {redact_url(url)}"

    async def open(self) -> Opened:
        host = redact_url(self.url)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context(self.ca_bundle, insecure=self.insecure)),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120), auto_decompress=False)
        try:
            resp = await session.get(self.url, max_redirects=self.max_redirects, headers=self.headers)
        except aiohttp.ClientConnectorCertificateError as exc:
            await session.close()
            raise source_error(f"GET {host}: the server's TLS certificate is not trusted ({exc.certificate_error}); "
                               "give its CA with a CA bundle", temporary=False) from exc
        except aiohttp.TooManyRedirects as exc:
            await session.close()
            raise source_error(f"GET {host}: more than {self.max_redirects} redirects", temporary=False) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            await session.close()
            raise source_error(f"GET {host}: {type(exc).__name__}: {exc}") from exc
        if resp.status != 200:
            status = f"{resp.status} {resp.reason}"
            resp.release()
            await session.close()
            raise source_error(f"GET {host}: the server answered {status}", temporary=resp.status >= 500)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_chunked(READ):
                    yield chunk
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise source_error(f"GET {host}: the download broke off: {type(exc).__name__}: {exc}") from exc

        async def close() -> None:
            resp.release()
            await session.close()

        return Opened(chunks(), resp.content_length, close)


async def read_file(path: Path, *, offset: int = 0) -> AsyncIterator[bytes]:
    """A file's bytes, read in a thread one chunk ahead of the consumer."""
    loop = asyncio.get_running_loop()
    f = path.open("rb")
    try:
        f.seek(offset)
        nxt = loop.run_in_executor(None, f.read, READ)
        while True:
            chunk = await nxt
            if not chunk:
                return
            nxt = loop.run_in_executor(None, f.read, READ)
            yield chunk
    finally:
        f.close()


class FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file: {path.name}"

    async def open(self) -> Opened:
        try:
            size = self.path.stat().st_size
            self.path.open("rb").close()
        except OSError as exc:
            raise source_error(f"{self.path}: {exc.strerror}", temporary=False) from exc
        return Opened(read_file(self.path), size)


class StreamSource:
    """Bytes handed over by someone else (DVCR's upload endpoint)."""

    def __init__(self, chunks: AsyncIterator[bytes], size: int | None, description: str = "upload") -> None:
        self._chunks, self.size, self.description = chunks, size, description

    async def open(self) -> Opened:
        return Opened(self._chunks, self.size)


def parse_image(ref: str) -> tuple[str, str, str]:
    """'host[:port]/repo/path[:tag|@digest]' -> (host, repo, reference)."""
    host, _, rest = ref.partition("/")
    if not rest or ("." not in host and ":" not in host and host != "localhost"):
        raise ImportFailed("InvalidSource", f"{ref!r}: give the registry host, e.g. registry.example.com/repo:tag")
    if "@" in rest:
        repo, _, reference = rest.partition("@")
    elif ":" in rest.rsplit("/", 1)[-1]:
        repo, _, reference = rest.rpartition(":")
    else:
        repo, reference = rest, "latest"
    return host, repo, reference


def pull_secret_credentials(path: Path, host: str) -> tuple[str | None, str | None]:
    """User and password for `host` from a `.dockerconfigjson`-style pull secret file."""
    doc = json.loads(path.read_text())
    auths = doc.get("auths", doc)
    for key, entry in auths.items():
        if key.split("://", 1)[-1].rstrip("/").split("/")[0] == host:
            if "auth" in entry:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, password
            return entry.get("username"), entry.get("password")
    raise ImportFailed("InvalidSource", f"{path}: the pull secret has no credentials for {host}")


class RegistrySource:
    """A container image whose layer holds `disk/<file>` (a containerDisk, or a DVCR image)."""

    def __init__(self, image: str, *, pull_secret: Path | None = None, ca_bundle: Path | None = None,
                 insecure: bool = False, platform: str = "linux/amd64") -> None:
        self.host, self.repo, self.reference = parse_image(image)
        self.pull_secret, self.ca_bundle, self.insecure, self.platform = pull_secret, ca_bundle, insecure, platform
        self.description = f"registry: {self.host}/{self.repo}{'@' if ':' in self.reference else ':'}{self.reference}"

    def client(self) -> RegistryClient:
        user, password = pull_secret_credentials(self.pull_secret, self.host) if self.pull_secret else (None, None)
        return RegistryClient(f"https://{self.host}", ssl_context=ssl_context(self.ca_bundle, insecure=self.insecure),
                              username=user, password=password, preemptive=False)

    async def _layers(self, client: RegistryClient) -> list[tuple[Digest, str]]:
        from controlplane.dvcr import manifests

        body, media_type, _ = await client.get_manifest(self.repo, self.reference)
        doc = json.loads(body)
        if (doc.get("mediaType") or media_type) in (OCI_INDEX, DOCKER_LIST):
            wanted = self.platform.split("/")
            pick = [m for m in doc.get("manifests", [])
                    if [m.get("platform", {}).get("os"), m.get("platform", {}).get("architecture")] == wanted]
            if not pick:
                raise ImportFailed("InvalidSource", f"{self.description}: no {self.platform} image in the index")
            body, media_type, _ = await client.get_manifest(self.repo, pick[0]["digest"])
        parsed = manifests.parse(body, media_type)
        return [(b.digest, b.media_type) for b in parsed.blobs[1:]]

    async def open(self) -> Opened:
        client = self.client()
        try:
            layers = await self._layers(client)
        except RegistryClientError as exc:
            await client.close()
            raise source_error(f"{self.description}: {exc}", temporary=exc.status >= 500) from exc
        except (aiohttp.ClientError, OSError) as exc:
            await client.close()
            raise source_error(f"{self.description}: {type(exc).__name__}: {exc}") from exc
        # A containerDisk's disk is in its last layer that has one; look from the top down.
        for d, media_type in reversed(layers):
            found = await self._open_layer(client, d, media_type)
            if found is not None:
                return found
        await client.close()
        raise format_error(f"{self.description}: no layer holds a file under disk/ (not a containerDisk image)")

    async def _open_layer(self, client: RegistryClient, d: Digest, media_type: str) -> Opened | None:
        if media_type.endswith("zstd"):
            raise format_error(f"{self.description}: layer {d} is zstd-compressed; only tar and tar+gzip layers "
                               "are supported")
        ctx = client.blob(self.repo, d)
        resp = await ctx.__aenter__()
        hasher = d.hasher()
        gz = media_type.endswith("gzip") or media_type.endswith(".tar.gzip")

        async def layer_bytes() -> AsyncIterator[bytes]:
            unpacker = Unpacker("gzip") if gz else None
            async for chunk in resp.content.iter_chunked(READ):
                hasher.update(chunk)
                if unpacker is None:
                    yield chunk
                else:
                    for piece in unpacker.feed(chunk):
                        yield piece
            if unpacker is not None:
                for piece in unpacker.finish():
                    yield piece
            if hasher.hexdigest() != d.hex:
                raise source_error(f"{self.description}: layer {d} arrived with digest "
                                   f"{d.algorithm}:{hasher.hexdigest()}", temporary=True)

        reader = tarstream.ByteReader(layer_bytes())
        try:
            found = await tarstream.find_disk(reader)
        except (ValueError, EOFError, FormatError) as exc:
            await ctx.__aexit__(None, None, None)
            raise format_error(f"{self.description}: layer {d}: {exc}") from exc
        if found is None:
            await ctx.__aexit__(None, None, None)
            return None
        entry, data = found

        async def chunks() -> AsyncIterator[bytes]:
            async for piece in data:
                yield piece
            await reader.drain()  # the rest of the layer, so its digest is checked before we finish

        async def close() -> None:
            await ctx.__aexit__(None, None, None)
            await client.close()

        return Opened(chunks(), entry.size, close)
