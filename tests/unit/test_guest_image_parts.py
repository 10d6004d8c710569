"""Pieces of the guest image build that need no download: module ordering, the cpio writer."""

from __future__ import annotations

import gzip
import struct
import subprocess
from pathlib import Path

import pytest

from nodeimage.guest import initramfs, kmod
from nodeimage.guest.initramfs import CpioWriter
from nodeimage.guest.kmod import ModuleError, resolve_modules


def fake_module(path: Path, **modinfo: str) -> None:
    """A minimal ELF64 file whose `.modinfo` section holds `modinfo` (what read_modinfo parses)."""
    info = b"".join(f"{k}={v}".encode() + b"\0" for k, v in modinfo.items())
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    info_off = 64
    str_off = info_off + len(info)
    sh_off = str_off + len(shstrtab)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, sh_off, 0, 64, 0, 0, 64, 3, 2)
    sections = bytes(64)  # SHN_UNDEF
    sections += struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, info_off, len(info), 0, 0, 1, 0)
    sections += struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, str_off, len(shstrtab), 0, 0, 1, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + info + shstrtab + sections)


@pytest.fixture
def moddir(tmp_path: Path) -> Path:
    d = tmp_path / "lib/modules/6.1.0-test"
    fake_module(d / "kernel/drivers/virtio/virtio_ring.ko", name="virtio_ring", depends="")
    fake_module(d / "kernel/drivers/virtio/virtio.ko", name="virtio", depends="virtio_ring")
    fake_module(d / "kernel/drivers/block/virtio_blk.ko", name="virtio_blk", depends="virtio,virtio_ring")
    fake_module(d / "kernel/drivers/scsi/sd_mod.ko", name="sd_mod", depends="scsi_mod,t10-pi")
    fake_module(d / "kernel/block/t10-pi.ko", name="t10_pi", depends="")
    fake_module(d / "kernel/lib/crc32c.ko", name="crc32c", depends="")
    fake_module(d / "kernel/fs/foo.ko", name="foo", depends="", softdep="pre: crc32c absent_mod post: bar")
    fake_module(d / "kernel/a/loop_a.ko", name="loop_a", depends="loop_b")
    fake_module(d / "kernel/a/loop_b.ko", name="loop_b", depends="loop_a")
    fake_module(d / "kernel/x/needs_gone.ko", name="needs_gone", depends="gone")
    (d / "modules.builtin").write_text("kernel/drivers/scsi/scsi_mod.ko\n")
    return d


@pytest.mark.parametrize(
    ("wanted", "order"),
    [
        (["virtio_blk"], ["virtio_ring", "virtio", "virtio_blk"]),
        (["virtio", "virtio_blk"], ["virtio_ring", "virtio", "virtio_blk"]),
        (["sd_mod"], ["t10_pi", "sd_mod"]),  # scsi_mod is built in; dashes normalised
        (["foo"], ["crc32c", "foo"]),  # a missing soft dependency is optional
    ],
    ids=["deps-first", "no-duplicates", "builtin-skipped", "softdep-pre"],
)
def test_modules_load_dependencies_first(moddir: Path, wanted: list[str], order: list[str]) -> None:
    assert [m.name for m in resolve_modules(moddir, wanted)] == order


@pytest.mark.parametrize(
    ("wanted", "message"),
    [(["loop_a"], "cycle"), (["needs_gone"], "gone \\(needed by needs_gone\\)"), (["e1000"], "e1000")],
    ids=["cycle", "missing-dependency", "missing-module"],
)
def test_module_problems_name_the_module(moddir: Path, wanted: list[str], message: str) -> None:
    with pytest.raises(ModuleError, match=message):
        resolve_modules(moddir, wanted)


def test_every_flavour_loads_the_seed_nic_and_power_button_drivers() -> None:
    for flavour, modules in kmod.FLAVOUR_MODULES.items():
        assert {"virtio_blk", "virtio_net", "isofs", "vfat", "button", "evdev"} <= set(modules), flavour
    assert {"ahci", "e1000"} <= set(kmod.FLAVOUR_MODULES["generic"])


def test_cpio_archive_is_what_the_kernel_unpacks(tmp_path: Path) -> None:
    cpio = CpioWriter()
    cpio.directory("etc")
    cpio.file("etc/hello", b"hi there\n", 0o640)
    cpio.symlink("bin/sh", "/bin/busybox")
    cpio.char_device("dev/console", 5, 1)
    archive = tmp_path / "a.cpio"
    archive.write_bytes(cpio.getvalue())
    listing = subprocess.run(
        ["busybox", "cpio", "-t", "-v", "-F", str(archive)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    modes = {line.split()[-1] if "->" not in line else line.split()[-3]: line.split()[0] for line in listing}
    assert modes == {
        "etc": "drwxr-xr-x",
        "etc/hello": "-rw-r-----",
        "bin/sh": "lrwxrwxrwx",
        "dev/console": "crw-------",
    }
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(
        ["busybox", "cpio", "-i", "-d", "-F", str(archive), "etc/hello"],
        cwd=out,
        check=True,
        capture_output=True,
    )
    assert (out / "etc/hello").read_bytes() == b"hi there\n"


def test_initramfs_is_deterministic_and_carries_init(tmp_path: Path) -> None:
    busybox = Path("/bin/busybox")
    a = initramfs.build_initramfs(busybox=busybox, modules=[], release={"flavour": "test"})
    b = initramfs.build_initramfs(busybox=busybox, modules=[], release={"flavour": "test"})
    assert a == b
    archive = tmp_path / "i.cpio"
    archive.write_bytes(gzip.decompress(a))
    names = subprocess.run(
        ["busybox", "cpio", "-t", "-F", str(archive)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert {
        "init",
        "sbin/init",
        "bin/sh",
        "etc/init.d/rcS",
        "etc/acpi/PWRF/00000080",
        "www/cgi-bin/status",
    } <= set(names)
