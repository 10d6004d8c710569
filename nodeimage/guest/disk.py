"""The guest's boot disk: an MBR-partitioned raw image booted by SYSLINUX, and its variants.

Fourth step of the guest image build. No loop devices and no mounts (so no root-only tricks):
the partition table is written by `sfdisk` on the image file, the FAT file system by
`mkfs.fat --offset` straight into the partition, the files by `mcopy` at that offset, and
the boot loader by the mtools flavour of `syslinux` (`--offset`), which is SYSLINUX/EXTLINUX's
FAT installer. The MBR code is syslinux's `mbr.bin`, which chain-loads the active partition.
The qcow2 and xz variants carry the same bytes, for testing the importer's formats.
"""

from __future__ import annotations

import lzma
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
PART_START_SECTOR = 2048  # 1 MiB, the usual alignment
SECTOR = 512
MiB = 1 << 20

Progress = Callable[[int, int], None]  # (done, total)


class DiskError(RuntimeError):
    """A disk tool failed while building the guest's boot disk."""


def _run(cmd: list[str], *, stdin: str | None = None) -> None:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError as exc:
        raise DiskError(f"{cmd[0]} not found: run `make setup` (it is in .ci/apt-packages)") from exc
    if done.returncode != 0:
        raise DiskError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()}")


def syslinux_cfg(cmdline: str) -> str:
    """Boot straight into the one kernel, no prompt; the loader also talks on the first serial port."""
    return (
        "SERIAL 0 115200\n"
        "DEFAULT dvp\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "LABEL dvp\n"
        "  LINUX /vmlinuz\n"
        "  INITRD /initrd.img\n"
        f"  APPEND {cmdline}\n"
    )


def disk_size_for(payload_bytes: int) -> int:
    """Whole-disk size: 1 MiB for the MBR gap, the payload with headroom, in 8 MiB steps."""
    need = PART_START_SECTOR * SECTOR + payload_bytes + payload_bytes // 4 + 4 * MiB
    return -(-need // (8 * MiB)) * (8 * MiB)


def build_boot_disk(out: Path, *, kernel: Path, initrd: Path, cmdline: str, workdir: Path) -> None:
    """Write a bootable raw disk image to `out` holding `kernel` and `initrd`."""
    if not MBR_BIN.exists():
        raise DiskError(f"{MBR_BIN} missing: install syslinux-common (`make setup`)")
    size = disk_size_for(kernel.stat().st_size + initrd.stat().st_size)
    part_sectors = size // SECTOR - PART_START_SECTOR
    offset = PART_START_SECTOR * SECTOR
    out.unlink(missing_ok=True)
    with out.open("wb") as f:
        f.truncate(size)
    # W95 FAT16 (LBA), active; fixed disk identifier so the same inputs give the same bytes
    table = f"label: dos\nlabel-id: 0x44565031\nstart={PART_START_SECTOR}, size={part_sectors}, type=e, bootable\n"
    _run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(out)], stdin=table)
    with out.open("r+b") as f:
        f.write(MBR_BIN.read_bytes()[:440])  # boot code only: keeps the partition table
    _run([
        "mkfs.fat", "-F", "16", "-n", "DVPBOOT", "-i", "44565031",
        f"--offset={PART_START_SECTOR}", "-h", str(PART_START_SECTOR),
        str(out), str(part_sectors * SECTOR // 1024),
    ])  # fmt: skip
    cfg = workdir / "syslinux.cfg"
    cfg.write_text(syslinux_cfg(cmdline))
    image = f"{out}@@{offset}"
    for src, name in ((kernel, "vmlinuz"), (initrd, "initrd.img"), (cfg, "syslinux.cfg")):
        _run(["mcopy", "-o", "-i", image, str(src), f"::/{name}"])
    _run(["syslinux", "--offset", str(offset), "--install", str(out)])


def convert_qcow2(raw: Path, out: Path) -> None:
    """The same disk as qcow2 (`qemu-img convert`)."""
    out.unlink(missing_ok=True)
    _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)])


def compress_xz(raw: Path, out: Path, *, progress: Progress | None = None) -> None:
    """The same disk as an .xz file (CRC64 check, the `xz` tool's default format)."""
    total = raw.stat().st_size
    done = 0
    tmp = out.with_name(out.name + ".part")
    compressor = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)
    with raw.open("rb") as src, tmp.open("wb") as dst:
        for chunk in iter(lambda: src.read(4 * MiB), b""):
            dst.write(compressor.compress(chunk))
            done += len(chunk)
            if progress:
                progress(done, total)
        dst.write(compressor.flush())
    tmp.replace(out)
