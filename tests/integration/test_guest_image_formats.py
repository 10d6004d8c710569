"""The guest image's qcow2 and xz variants carry exactly the bootable raw disk.

The importer will be tested with these files, so they must be what they claim: a valid
qcow2 (per `qemu-img info` / `qemu-img check`) and a valid xz stream (`xz -t`), both with
the raw image's bytes; the raw image is an MBR disk with one active FAT partition holding
the kernel, the initramfs and SYSLINUX.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodeimage.guest import GuestImage
from nodeimage.guest.disk import PART_START_SECTOR, SECTOR

pytestmark = pytest.mark.integration


@pytest.fixture(params=["cloud", "generic"])
def image(request: pytest.FixtureRequest) -> GuestImage:
    fixture = "guest_image" if request.param == "cloud" else "guest_image_generic"
    result: GuestImage = request.getfixturevalue(fixture)
    return result


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=True)


def _sha256_stream(cmd: list[str]) -> str:
    digest = hashlib.sha256()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
            digest.update(chunk)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}"
    return digest.hexdigest()


def test_raw_is_a_small_mbr_disk_with_an_active_fat_partition(image: GuestImage) -> None:
    raw = image.raw.read_bytes()
    assert 8 << 20 <= len(raw) <= 64 << 20, "tens of MB, not more"
    assert raw[510:512] == b"\x55\xaa"
    entry = raw[446:462]
    assert entry[0] == 0x80, "partition 1 is active (the MBR code boots it)"
    assert entry[4] == 0x0E, "partition 1 is FAT16 (LBA)"
    assert int.from_bytes(entry[8:12], "little") == PART_START_SECTOR
    files = _run("mdir", "-a", "-b", "-i", f"{image.raw}@@{PART_START_SECTOR * SECTOR}", "::/").stdout.split()
    assert {"::/vmlinuz", "::/initrd.img", "::/syslinux.cfg", "::/ldlinux.sys"} <= set(files)


def test_qcow2_is_valid_and_holds_the_raw_bytes(image: GuestImage, tmp_path: Path) -> None:
    info = json.loads(_run("qemu-img", "info", "--output", "json", str(image.qcow2)).stdout)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == image.raw.stat().st_size == image.manifest["raw_size"]
    _run("qemu-img", "check", "-q", str(image.qcow2))
    # exit 0 from `qemu-img compare` means identical guest-visible content
    _run("qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", str(image.raw), str(image.qcow2))
    back = tmp_path / "back.img"
    _run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(image.qcow2), str(back))
    assert _sha256_stream(["cat", str(back)]) == image.manifest["raw_sha256"]


def test_xz_is_valid_and_decompresses_to_the_raw_bytes(image: GuestImage) -> None:
    _run("xz", "-t", str(image.xz))
    listing = _run("xz", "--robot", "--list", str(image.xz)).stdout
    totals = next(line.split("\t") for line in listing.splitlines() if line.startswith("totals"))
    assert int(totals[4]) == image.raw.stat().st_size, "uncompressed size recorded in the xz index"
    decompressed = _sha256_stream(["xz", "-dc", str(image.xz)])
    assert decompressed == image.manifest["raw_sha256"] == _sha256_stream(["cat", str(image.raw)])


def test_build_command_exports_the_cached_files(image: GuestImage, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "nodeimage.guest", "build", "--out", str(tmp_path), "--flavour", image.flavour, "-o", "json"],
        capture_output=True, text=True, env=env, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    doc = json.loads(done.stdout)
    assert [d["flavour"] for d in doc] == [image.flavour]
    assert doc[0]["key"] == image.manifest["key"], "the cached image was reused, not rebuilt"
    for kind, path in doc[0]["files"].items():
        assert Path(path).parent == tmp_path, kind
        assert Path(path).stat().st_size > 0, kind
    assert Path(doc[0]["files"]["raw"]).read_bytes() == image.raw.read_bytes()
