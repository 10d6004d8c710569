"""A new, empty qcow2 file written by the node handler itself: the same bytes `qemu-img create
-f qcow2 [-F qcow2 -u -b BACKING] FILE SIZE` writes, without its process.

Why: a snapshot of a stopped disk, a restore and a disk made from a snapshot each need one empty
overlay, and an empty disk one empty file. A `qemu-img create` process costs about 10 ms (more
when the cores are busy); writing the four small structures below costs microseconds. The
overlay is on the path of every VirtualMachineSnapshot and VMOP Restore.

The layout is the one qemu-img (QEMU 7.2, Debian 12) writes with its defaults, byte for byte
(`tests/unit/nodehandler/test_qcow2_create.py` compares the two over sizes and backing names);
the format is QEMU's docs/interop/qcow2.txt, version 3, 64 KiB clusters, 16-bit refcounts:

- cluster 0: the header (112 bytes, every feature bit clear), its extensions (the backing
  file's format, the feature name table, the end mark) and the backing file's name;
- cluster 1: the refcount table, whose only entry points at cluster 2;
- cluster 2: the refcount block: a count of 1 for each cluster the file uses;
- cluster 3 on: the L1 table, all zero (no cluster allocated: every read goes to the backing
  file, or reads zeros). The file ends where the table ends.

Anything outside that (a virtual size whose L1 table would pass QEMU's 32 MiB limit, a backing
name longer than QEMU's 1023 bytes) raises ValueError, and the caller runs qemu-img, which says
what is wrong.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
L2_COVERS = CLUSTER * (CLUSTER // 8)
"""Bytes of virtual disk one L1 entry covers: one L2 table of 8-byte entries, each one cluster."""
MAX_L1_BYTES = 32 * 2**20  # QEMU's QCOW_MAX_L1_SIZE
MAX_BACKING_NAME = 1023  # QEMU's limit
REFCOUNT_TABLE, REFCOUNT_BLOCK, L1_TABLE = CLUSTER, 2 * CLUSTER, 3 * CLUSTER

_HEADER = struct.Struct(">4sIQIIQIIQQIIQQQQIIB7x")  # version 3 with the compression type byte, padded
_EXTENSION = struct.Struct(">II")
_BACKING_FORMAT, _FEATURE_NAMES = 0xE2792ACA, 0x6803F857
_FEATURES = ((0, 0, "dirty bit"), (0, 1, "corrupt bit"), (0, 2, "external data file"), (0, 3, "compression type"),
             (0, 4, "extended L2 entries"), (1, 0, "lazy refcounts"), (2, 0, "bitmaps"), (2, 1, "raw external data"))
"""(kind: 0 incompatible, 1 compatible, 2 autoclear; bit; name): the table qemu-img writes, so
that tools can name a feature bit they do not know."""


def _extension(kind: int, data: bytes) -> bytes:
    return _EXTENSION.pack(kind, len(data)) + data + b"\0" * (-len(data) % 8)


def layout(size: int, backing: str | None) -> tuple[bytes, int, int]:
    """(cluster 0's bytes, the number of L1 entries, the file's length) of an empty qcow2 file of
    `size` bytes (rounded up to 512, as qemu-img does) on `backing` (a qcow2 file) or none."""
    size = -(-size // 512) * 512
    l1_size = -(-size // L2_COVERS)
    if size < 0 or l1_size * 8 > MAX_L1_BYTES:
        raise ValueError(f"a virtual size of {size} bytes is outside what qcow2 holds")
    name = backing.encode("utf-8", "surrogateescape") if backing else b""
    if len(name) > MAX_BACKING_NAME:
        raise ValueError(f"the backing file's name is {len(name)} bytes; qcow2 takes at most {MAX_BACKING_NAME}")
    extensions = (_extension(_BACKING_FORMAT, b"qcow2") if name else b"") + _extension(
        _FEATURE_NAMES, b"".join(struct.pack(">BB46s", kind, bit, text.encode()) for kind, bit, text in _FEATURES)
    ) + _EXTENSION.pack(0, 0)
    name_offset = _HEADER.size + len(extensions)
    header = _HEADER.pack(b"QFI\xfb", 3, name_offset if name else 0, len(name), CLUSTER_BITS, size, 0, l1_size,
                          L1_TABLE if l1_size else 0, REFCOUNT_TABLE, 1, 0, 0, 0, 0, 0, 4, _HEADER.size, 0)
    return header + extensions + name, l1_size, L1_TABLE + l1_size * 8


def write(path: Path, size: int, backing: str | None = None) -> None:
    """Create `path` (which must not exist) as an empty qcow2 file of `size` bytes on `backing`
    (a qcow2 file's name, written as given and not opened, like `qemu-img create -u`), fsynced.
    ValueError when qcow2 cannot hold it (see the module doc)."""
    first, l1_size, length = layout(size, backing)
    l1_clusters = -(-l1_size * 8 // CLUSTER)
    refcounts = struct.pack(f">{3 + l1_clusters}H", *([1] * (3 + l1_clusters)))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.pwrite(fd, first, 0)
        os.pwrite(fd, struct.pack(">Q", REFCOUNT_BLOCK), REFCOUNT_TABLE)
        os.pwrite(fd, refcounts, REFCOUNT_BLOCK)
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)
