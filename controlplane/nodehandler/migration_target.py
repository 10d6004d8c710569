"""The target's files of a live migration, made through the target's own libvirtd.

The source node handler needs nothing on either host but their libvirtd connections: directories
are made by building a (transient) `dir` storage pool on them, the writable disks are
pre-created there as empty qcow2 volumes of the source's virtual size (QEMU then copies them
over NBD), and a read-only file the target does not hold yet (a cached image, the NoCloud
seed) is copied from the source's libvirtd into place with storage streams. Everything created here is remembered, so
a failed or cancelled migration removes exactly that — and never a file that was already
there. The transient pools are destroyed at the end (their files stay).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

import libvirt

log = logging.getLogger(__name__)
UPLOAD_CHUNK = 1 << 20
POOL_PREFIX = "dvp-migration-"
"""Transient storage pools a migration starts on the target's directories (stopped when it ends)."""


class TargetFilesError(RuntimeError):
    """A file or directory could not be prepared on the target (the message names it)."""


def _pool_xml(name: str, directory: str) -> str:
    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = name
    ET.SubElement(ET.SubElement(pool, "target"), "path").text = directory
    return ET.tostring(pool, encoding="unicode")


def _volume_xml(name: str, capacity: int, fmt: str) -> str:
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(capacity)
    target = ET.SubElement(vol, "target")
    ET.SubElement(target, "format", type=fmt)
    return ET.tostring(vol, encoding="unicode")


class TargetFiles:
    def __init__(self, conn: libvirt.virConnect) -> None:
        self.conn = conn
        self._pools: dict[str, libvirt.virStoragePool] = {}
        self._own_pools: list[libvirt.virStoragePool] = []
        self._created: list[str] = []

    @property
    def created(self) -> tuple[str, ...]:
        return tuple(self._created)

    def pool(self, directory: str) -> libvirt.virStoragePool:
        """A running pool on `directory` (made, with its parents, when absent)."""
        if directory in self._pools:
            return self._pools[directory]
        try:
            pool = self.conn.storagePoolLookupByTargetPath(directory)
            if not pool.isActive():
                pool.create(0)
            else:
                pool.refresh(0)  # someone else's pool: what it lists may be older than the directory
        except libvirt.libvirtError:
            name = POOL_PREFIX + hashlib.sha256(directory.encode()).hexdigest()[:16]
            try:
                pool = self.conn.storagePoolCreateXML(_pool_xml(name, directory), libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD)
            except libvirt.libvirtError as exc:
                raise TargetFilesError(f"directory {directory} on the target: {exc.get_error_message()}") from exc
            self._own_pools.append(pool)
        self._pools[directory] = pool
        return pool

    def _lookup(self, path: str) -> libvirt.virStorageVol | None:
        pool = self.pool(str(PurePosixPath(path).parent))  # scanned once, when started or found here
        try:
            return pool.storageVolLookupByName(PurePosixPath(path).name)
        except libvirt.libvirtError:
            return None

    def exists(self, path: str) -> bool:
        return self._lookup(path) is not None

    def create_disk(self, path: str, capacity: int, fmt: str) -> None:
        """An empty disk of `capacity` bytes at `path`; a file already there is an error (it would
        be overwritten by the copy)."""
        if self._lookup(path) is not None:
            raise TargetFilesError(f"{path} already exists on the target: a leftover of an earlier migration? "
                                   "Remove it there (the VM's disks are copied into new files)")
        pool = self.pool(str(PurePosixPath(path).parent))
        try:
            pool.createXML(_volume_xml(PurePosixPath(path).name, capacity, fmt), 0)
        except libvirt.libvirtError as exc:
            raise TargetFilesError(f"creating {path} on the target: {exc.get_error_message()}") from exc
        self._created.append(path)

    def size(self, path: str) -> int:
        vol = self._lookup(path)
        if vol is None:
            raise TargetFilesError(f"{path} does not exist")
        return int(vol.info()[1])

    def chunks(self, path: str) -> Iterator[bytes]:
        """The file's bytes, read through this libvirtd (a storage download stream)."""
        vol = self._lookup(path)
        if vol is None:
            raise TargetFilesError(f"{path} does not exist")
        stream = self.conn.newStream(0)
        vol.download(stream, 0, 0, 0)
        try:
            while True:
                chunk = stream.recv(UPLOAD_CHUNK)
                if isinstance(chunk, int):  # -2: would block (not for a blocking stream)
                    continue
                if not chunk:
                    break
                yield chunk
            stream.finish()
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            raise

    def copy_from(self, source: TargetFiles, path: str, *, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Copy `path` from the host of `source` to the same path here unless a file is there;
        True when copied. Both ends are libvirtd storage streams: no other access to either host."""
        if self._lookup(path) is not None:
            return False
        size = source.size(path)
        pool = self.pool(str(PurePosixPath(path).parent))
        try:
            vol = pool.createXML(_volume_xml(PurePosixPath(path).name, size, "raw"), 0)
            self._created.append(path)
            stream = self.conn.newStream(0)
            vol.upload(stream, 0, size, 0)
            try:
                for chunk in source.chunks(path):
                    if cancelled():
                        raise TargetFilesError(f"copying {path} to the target: cancelled")
                    stream.send(chunk)
                stream.finish()
            except BaseException:
                with contextlib.suppress(libvirt.libvirtError):
                    stream.abort()
                raise
        except libvirt.libvirtError as exc:
            raise TargetFilesError(f"copying {path} to the target: {exc.get_error_message()}") from exc
        log.info("copied %s to the target (%d bytes)", path, size)
        return True

    def remove(self, paths: list[str]) -> None:
        """Delete these files on the target (copies an interrupted migration made)."""
        self._created.extend(p for p in paths if self.exists(p))
        self.remove_created()

    def remove_created(self) -> None:
        """Delete what this object created on the target (after a failed migration)."""
        for path in reversed(self._created):
            vol = self._lookup(path)
            if vol is None:
                continue
            try:
                vol.delete(0)
            except libvirt.libvirtError as exc:
                log.warning("removing %s from the target failed: %s", path, exc)
        self._created.clear()

    def remove_directories(self, directories: list[str]) -> None:
        """Remove these directories on the target when empty (a dir pool's delete is an rmdir);
        the transient pools this object started are stopped first."""
        self.release()
        for directory in directories:
            with contextlib.suppress(libvirt.libvirtError):  # a transient pool a killed handler left there
                left = self.conn.storagePoolLookupByTargetPath(directory)
                if left.name().startswith(POOL_PREFIX) and not left.isPersistent():
                    left.destroy()
            name = "dvp-rmdir-" + hashlib.sha256(directory.encode()).hexdigest()[:16]
            try:
                pool = self.conn.storagePoolDefineXML(_pool_xml(name, directory), 0)
            except libvirt.libvirtError as exc:
                log.warning("removing directory %s from the target: %s", directory, exc.get_error_message())
                continue
            try:
                pool.delete(0)
            except libvirt.libvirtError as exc:
                log.warning("removing directory %s from the target: %s", directory, exc.get_error_message())
            finally:
                with contextlib.suppress(libvirt.libvirtError):
                    pool.undefine()

    def release(self) -> None:
        """Stop the transient pools made here (the files stay)."""
        for pool in self._own_pools:
            with contextlib.suppress(libvirt.libvirtError):
                pool.destroy()
        self._own_pools.clear()
        self._pools.clear()
