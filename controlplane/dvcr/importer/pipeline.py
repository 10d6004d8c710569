"""The import pipeline: one source in, one containerDisk artifact in DVCR out.

    source bytes -> progress + checksums (worker thread) -> [gzip|xz unpack] -> format
    detection on the first 128 KiB -> tar layer (header, disk bytes, padding) -> blob
    upload -> config -> manifest (tag)

When the unpacked size is known up front (an uncompressed source with a length) the layer
streams straight from the source to DVCR. Otherwise (gzip/xz, or no Content-Length) the
unpacked disk goes to one temporary file first, because a tar header must state the size
before the data; the checksums are then verified before anything is pushed. Either way
the layer's upload is committed only after every check passed, and the manifest is put
last: a failed import leaves nothing visible in DVCR.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from controlplane.dvcr.client import RegistryClientError
from controlplane.dvcr.digest import Digest, check_name, check_tag
from controlplane.dvcr.errors import RegistryError
from controlplane.dvcr.importer import artifact, metrics
from controlplane.dvcr.importer.checksum import Checksums
from controlplane.dvcr.importer.errors import ImportFailed, format_error, push_error, source_error
from controlplane.dvcr.importer.formats import HEAD_BYTES, Detected, FormatError, detect, detect_compression
from controlplane.dvcr.importer.progress import ProgressCallback, ProgressMeter
from controlplane.dvcr.importer.sink import BlobUpload, Sink
from controlplane.dvcr.importer.sources import read_file
from controlplane.dvcr.importer.streams import HashWorker, Peeker, rechunk, unpack
from controlplane.dvcr.manifests import OCI_MANIFEST


@dataclass
class ImportResult:
    repository: str
    tag: str
    image: str
    digest: str
    layer_digest: str
    format: str
    compression: str | None
    virtual_size: int
    unpacked_size: int
    stored_size: int
    source_size: int
    source: str
    checksums: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    average_speed: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"repository": self.repository, "tag": self.tag, "image": self.image, "digest": self.digest,
                "layerDigest": self.layer_digest, "format": self.format, "compression": self.compression,
                "virtualSize": self.virtual_size, "unpackedSize": self.unpacked_size,
                "storedSize": self.stored_size, "sourceSize": self.source_size, "source": self.source,
                "checksums": self.checksums, "durationSeconds": round(self.seconds, 3),
                "averageSpeed": int(self.average_speed)}


class _Count:
    bytes = 0


async def _counted(chunks: AsyncIterator[bytes], meter: ProgressMeter, hashes: HashWorker,
                   count: _Count | None = None) -> AsyncIterator[bytes]:
    async for chunk in rechunk(chunks):
        await hashes.submit(chunk)
        meter.add(len(chunk))
        if count is not None:
            count.bytes += len(chunk)
        yield chunk


class _Guard:
    """Remembers the first error raised inside a stream handed to an HTTP client, which
    would otherwise surface only as a broken request."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    async def wrap(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for c in chunks:
                yield c
        except BaseException as exc:
            self.error = exc
            raise


async def _push_layer(sink: Sink, repo: str, body: AsyncIterator[bytes]) -> Digest:
    """Stream one layer into a blob upload and commit it under its sha256; abort on any error."""
    upload: BlobUpload = await sink.start_upload(repo)
    guard = _Guard()
    layer_hash = hashlib.sha256()
    worker = HashWorker([layer_hash])

    async def hashed() -> AsyncIterator[bytes]:
        async for c in body:
            await worker.submit(c)
            yield c
        await worker.drain()

    try:
        try:
            await upload.write_stream(guard.wrap(hashed()))
        except Exception:
            if guard.error is not None:
                raise guard.error from None
            raise
        if guard.error is not None:
            raise guard.error
        digest = Digest("sha256", layer_hash.hexdigest())
        await upload.commit(digest)
    except BaseException:
        await upload.abort()
        raise
    finally:
        worker.close()
    return digest


async def _layer(fmt: str, size: int, data: AsyncIterator[bytes], *, before_tail: Any = None) -> AsyncIterator[bytes]:
    yield artifact.tar_head(fmt, size)
    n = 0
    async for chunk in data:
        n += len(chunk)
        if n > size:
            raise source_error(f"the source sent more than the {size} bytes it announced")
        yield chunk
    if n != size:
        raise source_error(f"the source ended after {n} of {size} bytes")
    if before_tail is not None:
        await before_tail()
    yield artifact.tar_tail(size)


async def _spool(disk: AsyncIterator[bytes], spool_dir: Path | None) -> tuple[Path, int]:
    loop = asyncio.get_running_loop()
    fd, name = tempfile.mkstemp(prefix="dvcr-import-", suffix=".disk", dir=spool_dir)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in disk:
                await loop.run_in_executor(None, f.write, chunk)
                size += len(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


async def import_image(source: Any, sink: Sink, repository: str, *, tag: str = "latest",
                       checksums: dict[str, str] | None = None, progress: ProgressCallback | None = None,
                       spool_dir: Path | None = None) -> ImportResult:
    """Import one image; raises ImportFailed (with a reason) and stores nothing on failure.
    Every finished attempt is counted in the importer's metrics (importer/metrics.py)."""
    fetched = _Count()
    started = time.monotonic()
    result, stored = "Cancelled", 0
    try:
        done = await _import(source, sink, repository, tag, checksums, progress, spool_dir, fetched)
        result, stored = metrics.SUCCEEDED, done.stored_size
        return done
    except ImportFailed as exc:
        result = exc.reason
        raise
    except Exception:
        result = "InternalError"
        raise
    finally:
        metrics.record(metrics.source_type(source), result, time.monotonic() - started, fetched.bytes, stored)


async def _import(source: Any, sink: Sink, repository: str, tag: str, checksums: dict[str, str] | None,
                  progress: ProgressCallback | None, spool_dir: Path | None, fetched: _Count) -> ImportResult:
    try:
        check_name(repository)
        check_tag(tag)
    except RegistryError as exc:
        raise ImportFailed("InvalidDestination", exc.message) from exc
    sums = Checksums(checksums)
    started = time.monotonic()
    try:
        opened = await source.open()
    except ImportFailed:
        raise
    except (RegistryClientError, aiohttp.ClientError, OSError) as exc:
        raise source_error(f"{source.description}: {exc}") from exc
    meter = ProgressMeter(progress, total=opened.size)
    hashes = HashWorker(list(sums.hashers.values()))
    no_hashes = HashWorker([])

    async def verify() -> None:
        await hashes.drain()
        sums.verify()

    spooled: Path | None = None
    try:
        src = Peeker(_counted(opened.chunks, meter, hashes, fetched))
        compression = detect_compression(await src.peek(8))
        disk = Peeker(unpack(src.__aiter__(), compression) if compression else src.__aiter__())
        detected: Detected = detect(await disk.peek(HEAD_BYTES))
        if compression is None and opened.size is not None:
            size = opened.size
            layer_digest = await _push_layer(sink, repository,
                                             _layer(detected.format, size, disk.__aiter__(), before_tail=verify))
        else:
            spooled, size = await _spool(disk.__aiter__(), spool_dir)
            await verify()  # before anything is pushed
            # the push from the spool file reports as its own phase; `done` of the final report
            # stays the source's byte count
            push_meter = ProgressMeter(progress, total=size, phase="pushing")
            pushed = _counted(read_file(spooled), push_meter, no_hashes)
            layer_digest = await _push_layer(sink, repository, _layer(detected.format, size, pushed))
        virtual = detected.virtual_size if detected.virtual_size is not None else size
        stored = artifact.layer_size(detected.format, size)
        source_size = fetched.bytes
        labels = artifact.dvp_labels(detected.format, virtual, source_size)
        config = artifact.config_json(layer_digest, labels)
        config_digest = await sink.put_blob(repository, config)
        annotations = {artifact.A_FORMAT: detected.format, artifact.A_VIRTUAL: str(virtual),
                       artifact.A_UNPACKED: str(size), artifact.A_STORED: str(stored),
                       artifact.A_SOURCE_SIZE: str(source_size), artifact.A_COMPRESSION: compression or "none",
                       artifact.A_SOURCE: source.description}
        manifest = artifact.manifest_json(config_digest, len(config), layer_digest, stored, annotations)
        digest = await sink.put_manifest(repository, tag, manifest, OCI_MANIFEST)
    except FormatError as exc:
        raise format_error(f"{source.description}: {exc}") from exc
    except (RegistryClientError, RegistryError) as exc:
        raise push_error(f"pushing to {sink.registry}/{repository}: {exc}") from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise push_error(f"talking to {sink.registry}: {type(exc).__name__}: {exc}") from exc
    finally:
        hashes.close()
        no_hashes.close()
        with contextlib.suppress(Exception):
            await opened.close()
        if spooled is not None:
            spooled.unlink(missing_ok=True)
    meter.finish()
    seconds = time.monotonic() - started
    return ImportResult(repository, tag, f"{sink.registry}/{repository}:{tag}", str(digest), str(layer_digest),
                        detected.format, compression, virtual, size, stored, source_size, source.description,
                        sums.verify(), seconds, source_size / max(seconds, 1e-6))

