"""The registry's state behind one object: blobs, uploads, repositories and the write gate,
all on one storage driver. The HTTP handlers, GC and the in-process importer sink use this;
nothing else touches the driver."""

from __future__ import annotations

from controlplane.dvcr.blobs import BlobStore
from controlplane.dvcr.driver import StorageDriver
from controlplane.dvcr.gate import WriteGate
from controlplane.dvcr.repository import Repositories
from controlplane.dvcr.uploads import Uploads


class RegistryStore:
    def __init__(self, driver: StorageDriver, *, stale_uploads_after: float = 24 * 3600) -> None:
        self.driver = driver
        self.blobs = BlobStore(driver)
        self.uploads = Uploads(driver, self.blobs, stale_after=stale_uploads_after)
        self.repos = Repositories(driver, self.blobs)
        self.gate = WriteGate()
