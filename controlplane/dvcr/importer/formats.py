"""Disk image formats, detected from content (never from a file name).

`detect_compression` looks at the first bytes of the source (gzip and xz are unpacked
while streaming; other compressions are named and refused). `detect` looks at the first
`HEAD_BYTES` of the unpacked data: qcow2, vmdk and vdi by their headers (which also give
the virtual size), iso by the ISO 9660 volume descriptor, raw by a partition table, a
filesystem superblock or a blank start. Anything else is refused with an error naming
what it looks like. Headers are parsed as the formats' specifications lay them out;
tests check every virtual size against `qemu-img info`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEAD_BYTES = 128 * 1024
SUPPORTED = ("qcow2", "raw", "iso", "vmdk", "vdi")
EXTENSIONS = {"qcow2": "qcow2", "raw": "img", "iso": "iso", "vmdk": "vmdk", "vdi": "vdi"}


class FormatError(ValueError):
    """The content is not an importable disk image; the message names what it is."""


@dataclass(frozen=True)
class Detected:
    format: str
    virtual_size: int | None  # None: the whole unpacked size (raw, iso)
    detail: str = ""


COMPRESSIONS: list[tuple[bytes, int, str | None, str]] = [
    (b"\x1f\x8b", 0, "gzip", "gzip-compressed data"),
    (b"\xfd7zXZ\x00", 0, "xz", "xz-compressed data"),
    (b"BZh", 0, None, "bzip2-compressed data"),
    (b"\x28\xb5\x2f\xfd", 0, None, "zstd-compressed data"),
    (b"\x04\x22\x4d\x18", 0, None, "lz4-compressed data"),
    (b"LZIP", 0, None, "lzip-compressed data"),
]

# Content that is not a disk image, by signature: offset, bytes, name.
NOT_DISKS: list[tuple[int, bytes, str]] = [
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (257, b"ustar", "a tar archive"),
    (0, b"070701", "a cpio archive"),
    (0, b"\x7fELF", "an ELF executable"),
    (0, b"MZ", "a Windows executable"),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"hsqs", "a squashfs filesystem"),
    (0, b"QFI\xfb", "a qcow image of version 1"),
    (0, b"QED\x00", "a QED disk image"),
    (0, b"vhdxfile", "a VHDX disk image"),
    (0, b"conectix", "a VHD disk image"),
    (0, b"COWD", "a VMware ESX (COWD) sparse disk"),
    (0, b"# Disk DescriptorFile", "a VMDK descriptor without its data (its extents are separate files; "
                                  "use a monolithicSparse or streamOptimized .vmdk)"),
]

# Raw disks: a partition table or a filesystem/volume signature at the start of the device.
RAW_SIGNATURES: list[tuple[int, bytes, str]] = [
    (512, b"EFI PART", "GPT partition table"),
    (510, b"\x55\xaa", "MBR boot sector"),
    (1080, b"\x53\xef", "ext2/3/4 filesystem"),
    (0, b"XFSB", "XFS filesystem"),
    (65600, b"_BHRfS_M", "btrfs filesystem"),
    (0, b"LUKS\xba\xbe", "LUKS volume"),
    (512, b"LABELONE", "LVM physical volume"),
    (4086, b"SWAPSPACE2", "swap area"),
]


def detect_compression(head: bytes) -> str | None:
    """'gzip', 'xz', or None for uncompressed; other compressions raise FormatError."""
    for magic, off, kind, name in COMPRESSIONS:
        if head[off:off + len(magic)] == magic:
            if kind is None:
                raise FormatError(f"the source is {name}; supported compressions are gzip and xz")
            return kind
    return None


QCOW2_CORRUPT = 1 << 1
QCOW2_EXTERNAL_DATA_FILE = 1 << 2
QCOW2_KNOWN_INCOMPATIBLE = 0b11111
"""qcow2 v3 incompatible features: dirty, corrupt, external data file, compression type, extended L2."""


def _qcow2(head: bytes) -> Detected:
    if len(head) < 72:
        raise FormatError("qcow2 header is truncated")
    version, backing_off, backing_len = struct.unpack(">IQI", head[4:20])
    size = struct.unpack(">Q", head[24:32])[0]
    crypt = struct.unpack(">I", head[32:36])[0]
    if version not in (2, 3):
        raise FormatError(f"qcow2 version {version} is not supported (2 or 3 are)")
    if backing_off:
        name = head[backing_off:backing_off + backing_len].decode(errors="replace") if backing_len < 4096 else "?"
        raise FormatError(f"the qcow2 image has a backing file ({name!r}) and cannot be imported on its own; "
                          "flatten it first with `qemu-img convert -O qcow2 IN OUT`")
    if crypt:
        raise FormatError("the qcow2 image is encrypted; decrypt it first with `qemu-img convert`")
    incompatible = struct.unpack(">Q", head[72:80])[0] if version == 3 else 0
    if incompatible & QCOW2_EXTERNAL_DATA_FILE:  # QEMU would read a file of the host it runs on
        raise FormatError("the qcow2 image keeps its data in an external data file and cannot be imported on its "
                          "own; make a self-contained copy first with `qemu-img convert -O qcow2 IN OUT`")
    if incompatible & QCOW2_CORRUPT:
        raise FormatError("the qcow2 image is marked corrupt; repair it first with `qemu-img check -r all`")
    if incompatible & ~QCOW2_KNOWN_INCOMPATIBLE:
        raise FormatError(f"the qcow2 image needs features unknown here (incompatible feature bits "
                          f"{incompatible & ~QCOW2_KNOWN_INCOMPATIBLE:#x}); convert it with `qemu-img convert`")
    return Detected("qcow2", size, f"qcow2 v{version}")


def _vmdk(head: bytes) -> Detected:
    version, flags, capacity = struct.unpack("<IIQ", head[4:20])
    if capacity == 0:  # QEMU then opens the embedded descriptor's extents: files of the host it runs on
        raise FormatError("the VMDK has no capacity of its own: its data is in the extents its descriptor names "
                          "(other files); use a monolithicSparse or streamOptimized .vmdk")
    return Detected("vmdk", capacity * 512, f"vmdk sparse v{version}")


def _vdi(head: bytes) -> Detected:
    if len(head) < 0x178:
        raise FormatError("vdi header is truncated")
    size = struct.unpack("<Q", head[0x170:0x178])[0]
    return Detected("vdi", size, "vdi")


def _text_or_binary(head: bytes) -> str:
    sample = head[:4096].lstrip()
    lower = sample[:256].lower()
    if lower.startswith((b"<!doctype html", b"<html")) or b"<html" in lower:
        return "an HTML page (is the URL a download link?)"
    if lower.startswith(b"<?xml"):
        return "an XML document"
    if sample[:1] in (b"{", b"["):
        return "JSON text"
    if sample.startswith(b"#!"):
        return "a script"
    try:
        sample.decode("utf-8")
        if sample and all(c >= 0x20 or c in (9, 10, 13) for c in sample):
            return "text"
    except UnicodeDecodeError:
        pass
    return f"unrecognised binary data (starts with {head[:8].hex()})"


def detect(head: bytes, *, total: int | None = None) -> Detected:
    """The format of a disk image from its first bytes (up to HEAD_BYTES)."""
    if not head:
        raise FormatError("the source is empty")
    if head[:4] == b"QFI\xfb" and len(head) >= 8 and struct.unpack(">I", head[4:8])[0] >= 2:
        return _qcow2(head)
    if head[:4] == b"KDMV":
        return _vmdk(head)
    if len(head) >= 0x44 and struct.unpack("<I", head[0x40:0x44])[0] == 0xBEDA107F:
        return _vdi(head)
    if head[32769:32774] == b"CD001":
        return Detected("iso", None, "ISO 9660")
    for off, magic, name in NOT_DISKS:
        if head[off:off + len(magic)] == magic:
            raise FormatError(f"the content is {name}, not a disk image (supported: {', '.join(SUPPORTED)})")
    for off, magic, name in RAW_SIGNATURES:
        if head[off:off + len(magic)] == magic:
            return Detected("raw", None, f"raw ({name})")
    if not any(head[:HEAD_BYTES]):
        return Detected("raw", None, "raw (blank start)")
    for magic, _off, _kind, name in COMPRESSIONS:
        if head.startswith(magic):
            raise FormatError(f"the content is {name} inside a compressed file; unpack it once before importing")
    raise FormatError(f"the content is {_text_or_binary(head)}, not a disk image "
                      f"(supported: {', '.join(SUPPORTED)})")
