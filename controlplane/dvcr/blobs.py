"""The blob store: content-addressed bytes plus the per-repository links that say which
repository may serve which blob. Built on the storage driver's stat/read/ingest/move.

A blob becomes visible only through `commit_upload` (a verified upload renamed into place)
or `put` (small documents: manifests and configs, hashed here). Removing bytes is GC's job;
`unlink` only withdraws a blob from one repository.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import BinaryIO

from controlplane.dvcr import layout
from controlplane.dvcr.digest import Digest, digest_of
from controlplane.dvcr.driver import PathNotFound, StorageDriver


@dataclass(frozen=True)
class BlobInfo:
    digest: Digest
    size: int
    mtime: float


class BlobStore:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    # --- bytes ------------------------------------------------------------------------------
    def stat(self, d: Digest) -> BlobInfo | None:
        info = self.driver.stat(layout.blob_data(d))
        if info is None or info.is_dir:
            return None
        return BlobInfo(d, info.size, info.mtime)

    def open(self, d: Digest, *, offset: int = 0) -> BinaryIO:
        return self.driver.read(layout.blob_data(d), offset=offset)

    def get(self, d: Digest) -> bytes:
        return self.driver.get(layout.blob_data(d))

    def put(self, data: bytes, *, algorithm: str = "sha256") -> Digest:
        """Store a small document under its own digest (idempotent)."""
        d = digest_of(data, algorithm)
        if self.stat(d) is None:
            self.driver.put(layout.blob_data(d), data)
        return d

    def commit_upload(self, upload_path: str, d: Digest) -> None:
        """Make a verified upload visible: one atomic rename. When the same content is already
        there (another client pushed it too), the rename replaces it with identical bytes."""
        self.driver.move(upload_path, layout.blob_data(d))

    def remove(self, d: Digest) -> None:
        """Delete the bytes (garbage collection only)."""
        with contextlib.suppress(PathNotFound):
            self.driver.delete(layout.blob_dir(d))

    def all(self) -> list[BlobInfo]:
        out: list[BlobInfo] = []
        for f in self.driver.walk(layout.BLOBS):
            parts = f.path.split("/")
            # blobs/<alg>/<xx>/<hex>/data
            if len(parts) == 5 and parts[4] == "data":
                out.append(BlobInfo(Digest(parts[1], parts[3]), f.size, f.mtime))
        return out

    # --- repository links ------------------------------------------------------------------
    def link(self, repo: str, d: Digest) -> None:
        path = layout.layer_link(repo, d)
        if self.driver.stat(path) is None:
            self.driver.put(path, json.dumps({"digest": str(d), "linkedAt": time.time()}).encode())

    def linked(self, repo: str, d: Digest) -> bool:
        return self.driver.stat(layout.layer_link(repo, d)) is not None

    def unlink(self, repo: str, d: Digest) -> bool:
        try:
            self.driver.delete(layout.layer_link(repo, d))
        except PathNotFound:
            return False
        return True

    def links(self, repo: str) -> list[Digest]:
        out: list[Digest] = []
        for f in self.driver.walk(layout.layer_links(repo)):
            parts = f.path.split("/")
            if parts[-1] == "link":
                out.append(Digest(parts[-3], parts[-2]))
        return out

    def stat_in(self, repo: str, d: Digest) -> BlobInfo | None:
        """The blob, if this repository may serve it."""
        if not self.linked(repo, d):
            return None
        return self.stat(d)
