"""Where the importer pushes: DVCR over its registry API, or DVCR's store in-process.

`RegistrySink` is what the image controller and `dvp dvcr import` use (the same code on
both targets). `StoreSink` is used by DVCR itself for uploads it receives, to skip a TLS
round trip to itself; it waits for garbage collection instead of failing on the gate.
Either way a blob upload is committed only after the importer has verified everything,
and `abort` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from controlplane.dvcr.client import RegistryClient
from controlplane.dvcr.digest import Digest, digest_of
from controlplane.dvcr.store import RegistryStore
from controlplane.dvcr.uploads import UploadSession


class BlobUpload(Protocol):
    async def write_stream(self, chunks: AsyncIterator[bytes]) -> None: ...

    async def commit(self, d: Digest) -> None: ...

    async def abort(self) -> None: ...


class Sink(Protocol):
    registry: str

    async def start_upload(self, repo: str) -> BlobUpload: ...

    async def put_blob(self, repo: str, data: bytes) -> Digest: ...

    async def put_manifest(self, repo: str, tag: str, body: bytes, media_type: str) -> Digest: ...


class RegistrySink:
    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.registry = client.host

    async def start_upload(self, repo: str) -> BlobUpload:
        return await self.client.start_upload(repo)

    async def put_blob(self, repo: str, data: bytes) -> Digest:
        return await self.client.put_blob(repo, data)

    async def put_manifest(self, repo: str, tag: str, body: bytes, media_type: str) -> Digest:
        return await self.client.put_manifest(repo, tag, body, media_type)


class _StoreUpload:
    def __init__(self, store: RegistryStore, session: UploadSession) -> None:
        self.store, self.session = store, session

    async def write_stream(self, chunks: AsyncIterator[bytes]) -> None:
        async with self.session.lock:
            await self.store.uploads.append(self.session, chunks)

    async def commit(self, d: Digest) -> None:
        async with self.store.gate.write(wait=True):
            await asyncio.get_running_loop().run_in_executor(None, self.store.uploads.finish, self.session, d)

    async def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.store.uploads.cancel(self.session)


class StoreSink:
    def __init__(self, store: RegistryStore, registry: str) -> None:
        self.store = store
        self.registry = registry

    async def start_upload(self, repo: str) -> BlobUpload:
        return _StoreUpload(self.store, self.store.uploads.create(repo))

    async def put_blob(self, repo: str, data: bytes) -> Digest:
        async with self.store.gate.write(wait=True):
            d = self.store.blobs.put(data)
            self.store.blobs.link(repo, d)
        return d

    async def put_manifest(self, repo: str, tag: str, body: bytes, media_type: str) -> Digest:
        async with self.store.gate.write(wait=True):
            await asyncio.get_running_loop().run_in_executor(
                None, self.store.repos.put_manifest, repo, tag, body, media_type)
        return digest_of(body)
