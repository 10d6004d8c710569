"""The importer's pieces without services: format and compression detection, streaming
unpacking, the containerDisk tar layer, the tar stream reader, checksums and progress."""

from __future__ import annotations

import gzip
import io
import lzma
import struct
import tarfile
from collections.abc import AsyncIterator

import pytest

from controlplane.dvcr.importer import artifact, tarstream
from controlplane.dvcr.importer.checksum import Checksums, parse_checksum
from controlplane.dvcr.importer.decompress import Unpacker
from controlplane.dvcr.importer.errors import ImportFailed, redact_url
from controlplane.dvcr.importer.formats import FormatError, detect, detect_compression
from controlplane.dvcr.importer.progress import ProgressMeter


def qcow2_header(size: int, *, version: int = 3, backing: bytes = b"", incompatible: int = 0) -> bytes:
    head = bytearray(4096)
    head[0:4] = b"QFI\xfb"
    struct.pack_into(">I", head, 4, version)
    struct.pack_into(">Q", head, 72, incompatible)
    if backing:
        struct.pack_into(">QI", head, 8, 512, len(backing))
        head[512:512 + len(backing)] = backing
    struct.pack_into(">Q", head, 24, size)
    return bytes(head)


def vmdk_header(sectors: int) -> bytes:
    return b"KDMV" + struct.pack("<IIQ", 1, 3, sectors) + b"\0" * 1000


def vdi_header(size: int) -> bytes:
    head = bytearray(512)
    head[0:40] = b"<<< Oracle VM VirtualBox Disk Image >>>\n"
    struct.pack_into("<I", head, 0x40, 0xBEDA107F)
    struct.pack_into("<Q", head, 0x170, size)
    return bytes(head)


def iso_head() -> bytes:
    head = bytearray(40000)
    head[32769:32774] = b"CD001"
    return bytes(head)


def mbr_head() -> bytes:
    head = bytearray(4096)
    head[0:3] = b"\xeb\x63\x90"
    head[510:512] = b"\x55\xaa"
    return bytes(head)


@pytest.mark.parametrize("head,fmt,vsize", [
    (qcow2_header(10 << 30), "qcow2", 10 << 30),
    (vmdk_header(2048), "vmdk", 2048 * 512),
    (vdi_header(5 << 20), "vdi", 5 << 20),
    (iso_head(), "iso", None),
    (mbr_head(), "raw", None),
    (b"\0" * 65536, "raw", None),
], ids=["qcow2", "vmdk", "vdi", "iso", "raw-mbr", "raw-blank"])
def test_formats_are_detected_from_content(head: bytes, fmt: str, vsize: int | None) -> None:
    found = detect(head)
    assert (found.format, found.virtual_size) == (fmt, vsize)


@pytest.mark.parametrize("head,named", [
    (b"PK\x03\x04" + b"\0" * 100, "zip archive"),
    (b"\x7fELF" + b"\0" * 100, "ELF executable"),
    (b"<!DOCTYPE html><html></html>", "HTML page"),
    (b"hello, this is text\n" * 10, "text"),
    (b"\x01\x02\x03\x04\xfe\xfd" * 100, "unrecognised binary data (starts with 010203"),
    (qcow2_header(1 << 20, backing=b"base.qcow2"), "backing file ('base.qcow2')"),
    (qcow2_header(1 << 20, version=1), "qcow image of version 1"),
    (qcow2_header(1 << 20, incompatible=0b100), "external data file"),
    (qcow2_header(1 << 20, incompatible=0b10), "marked corrupt"),
    (qcow2_header(1 << 20, incompatible=1 << 9), "incompatible feature bits 0x200"),
    (b"# Disk DescriptorFile\nversion=1\n", "VMDK descriptor"),
    (vmdk_header(0), "its data is in the extents its descriptor names"),
    (b"", "empty"),
], ids=["zip", "elf", "html", "text", "binary", "qcow2-backing", "qcow1", "qcow2-data-file", "qcow2-corrupt",
        "qcow2-unknown-feature", "vmdk-descriptor", "vmdk-no-capacity", "empty"])
def test_anything_else_is_refused_naming_what_it_is(head: bytes, named: str) -> None:
    with pytest.raises(FormatError) as err:
        detect(head)
    assert named in str(err.value)


def test_compressions() -> None:
    assert detect_compression(gzip.compress(b"x")) == "gzip"
    assert detect_compression(lzma.compress(b"x")) == "xz"
    assert detect_compression(b"QFI\xfb") is None
    for head, name in [(b"BZh91AY", "bzip2"), (b"\x28\xb5\x2f\xfd", "zstd")]:
        with pytest.raises(FormatError, match=name):
            detect_compression(head)


@pytest.mark.parametrize("kind,compress", [("gzip", gzip.compress), ("xz", lzma.compress)])
def test_unpacker_streams_concatenated_members_and_bounds_output(kind: str, compress: object) -> None:
    payload = bytes(range(256)) * 40000  # 10 MB, compresses well
    packed = compress(payload[:5_000_000]) + compress(payload[5_000_000:])  # type: ignore[operator]
    u = Unpacker(kind)
    out = []
    for i in range(0, len(packed), 7777):
        pieces = u.feed(packed[i:i + 7777])
        assert all(len(p) <= 4 << 20 for p in pieces)
        out += pieces
    out += u.finish()
    assert b"".join(out) == payload


@pytest.mark.parametrize("kind,compress", [("gzip", gzip.compress), ("xz", lzma.compress)])
def test_truncated_stream_is_an_error(kind: str, compress: object) -> None:
    packed = compress(b"abc" * 100000)  # type: ignore[operator]
    u = Unpacker(kind)
    u.feed(packed[: len(packed) // 2])
    with pytest.raises(FormatError, match="truncated"):
        u.finish()


@pytest.mark.parametrize("size", [0, 1000, 10 << 30], ids=["empty", "small", "over-8GiB"])
def test_layer_tar_is_a_valid_containerdisk(size: int) -> None:
    head, tail = artifact.tar_head("qcow2", size), artifact.tar_tail(size)
    assert len(head) % 512 == 0 and (len(head) + size + len(tail)) % 512 == 0
    assert artifact.layer_size("qcow2", size) == len(head) + size + len(tail)
    if size > 1 << 20:  # too big to materialise: parse the headers only
        with tarfile.open(fileobj=io.BytesIO(head + b"\0" * 512), mode="r|") as t:
            member = next(iter(t))
            member = t.next() if member.isdir() else member  # type: ignore[assignment]
            assert member is not None and member.name == "disk/disk.qcow2" and member.size == size
        return
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    with tarfile.open(fileobj=io.BytesIO(head + data + tail)) as t:
        members = t.getmembers()
        assert [m.name for m in members] == ["disk", "disk/disk.qcow2"]
        assert members[1].uid == 107 and members[1].mtime == 0
        f = t.extractfile(members[1])
        assert f is not None and f.read() == data


async def _chunks(data: bytes, n: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), n):
        yield data[i:i + n]


async def test_tar_stream_finds_the_disk_past_other_entries() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in [("etc/os-release", b"x" * 700), ("disk/" + "long" * 40 + ".img", b"D" * 5000)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    reader = tarstream.ByteReader(_chunks(buf.getvalue(), 333))
    found = await tarstream.find_disk(reader)
    assert found is not None
    entry, data = found
    assert entry.name.endswith(".img") and entry.size == 5000
    assert b"".join([c async for c in data]) == b"D" * 5000
    assert await reader.drain() > 0  # the end-of-archive blocks are still there for the digest


async def test_tar_stream_without_disk() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("bin/sh")
        t.addfile(ti, io.BytesIO(b""))
    assert await tarstream.find_disk(tarstream.ByteReader(_chunks(buf.getvalue(), 100))) is None


def test_checksums() -> None:
    assert parse_checksum("SHA256:" + "AB" * 32) == ("sha256", "ab" * 32)
    for bad in ("sha256:abc", "crc32:1234", "nothing"):
        with pytest.raises(ImportFailed):
            parse_checksum(bad)
    sums = Checksums({"md5": "900150983cd24fb0d6963f7d28e17f72"})
    sums.hashers["md5"].update(b"abc")
    assert sums.verify() == {"md5": "900150983cd24fb0d6963f7d28e17f72"}
    sums.hashers["md5"].update(b"more")
    with pytest.raises(ImportFailed) as err:
        sums.verify()
    assert err.value.reason == "ChecksumMismatch" and "md5" in err.value.message


def test_urls_are_recorded_without_secrets() -> None:
    assert redact_url("https://user:pw@host:8443/a/b.qcow2?X-Amz-Signature=s3cret") == "https://host:8443/a/b.qcow2"


def test_progress_reports_totals_and_speeds() -> None:
    seen = []
    meter = ProgressMeter(seen.append, total=1000, interval=0.0)
    meter.add(250)
    meter.add(250)
    final = meter.finish()
    assert seen[0].done == 250 and seen[1].percent == 50.0
    assert final.phase == "done" and final.done == 500 and final.average_speed > 0
    assert final.to_json()["percent"] == 50.0


# hashes of b"abc": FIPS 180 and RFC 1321 test vectors
ABC = {"sha1": "a9993e364706816aba3e25717850c26c9cd0d89d",
       "sha512": "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
                 "454d4423643ce80e2a9ac94fa54ca49f"}
# GOST R 34.11-2012 of the empty message (the examples in DVP's CRD)
STREEBOG_EMPTY = {"streebog256": "3f539a213e97c802cc229d474c6aa32a825a360b2a933a949fd925208d9ce1bb",
                  "streebog512": "8e945da209aa869f0455928529bcae4679e9873ab707b55315f56ceb98bef0a7362f715528356ee83cda5f2aac"
                                 "4c6ad2ba3a715c1bcd81cb8e9f90bf4c1c1a8a"}


@pytest.mark.parametrize("alg", sorted(ABC))
def test_sha1_and_sha512_verify(alg: str) -> None:
    sums = Checksums({alg: ABC[alg]})
    sums.hashers[alg].update(b"abc")
    assert sums.verify() == {alg: ABC[alg]}


@pytest.mark.parametrize("alg", sorted(STREEBOG_EMPTY))
def test_streebog_is_verified_or_refused_never_skipped(alg: str) -> None:
    import hashlib

    try:
        hashlib.new(alg)
        has_it = True
    except ValueError:
        has_it = False
    if has_it:  # an OpenSSL with the GOST hashes: checked like any other
        assert Checksums({alg: STREEBOG_EMPTY[alg]}).verify() == {alg: STREEBOG_EMPTY[alg]}
        return
    with pytest.raises(ImportFailed) as err:
        Checksums({alg: STREEBOG_EMPTY[alg]})
    assert err.value.reason == "InvalidSource"
    assert f"checksum {alg} (GOST R 34.11-2012) cannot be verified here" in err.value.message
    assert "sha256" in err.value.message  # says what to use instead
