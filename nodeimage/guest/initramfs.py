"""The guest's initramfs: busybox, the chosen kernel modules and the init scripts.

Third step of the guest image build. The archive is written directly in the kernel's `newc`
cpio format by this module rather than with `cpio` from a staged directory: that needs no
root for device nodes or ownership, and with fixed timestamps the same inputs always give
the same bytes. The guest runs entirely from this initramfs; the boot disk only carries the
kernel, this file and the boot loader. Guest-side files live in `files/` next to this module.
"""

from __future__ import annotations

import gzip
import io
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nodeimage.guest.kmod import ModuleInfo

FILES = Path(__file__).parent / "files"

# (path in the guest, file under files/, mode)
_GUEST_FILES = [
    ("init", "init", 0o755),
    ("etc/inittab", "inittab", 0o644),
    ("etc/init.d/rcS", "rcS", 0o755),
    ("etc/init.d/shutdown", "shutdown", 0o755),
    ("etc/udhcpc.script", "udhcpc.script", 0o755),
    ("etc/acpi/PWRF/00000080", "power-button", 0o755),
    ("www/cgi-bin/status", "cgi-status", 0o755),
    ("www/cgi-bin/uptime", "cgi-uptime", 0o755),
]
_DIRS = [
    "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "etc/init.d", "etc/acpi", "etc/acpi/PWRF",
    "dev", "proc", "sys", "run", "root", "var", "lib", "lib/modules", "www", "www/cgi-bin",
]  # fmt: skip


@dataclass
class _Entry:
    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


class CpioWriter:
    """A `newc` cpio archive in memory, every entry owned by root with mtime 0."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    def directory(self, path: str, mode: int = 0o755) -> None:
        self._entries.append(_Entry(path, stat.S_IFDIR | mode))

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._entries.append(_Entry(path, stat.S_IFREG | mode, data))

    def symlink(self, path: str, target: str) -> None:
        self._entries.append(_Entry(path, stat.S_IFLNK | 0o777, target.encode()))

    def char_device(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entries.append(_Entry(path, stat.S_IFCHR | mode, rdev=(major, minor)))

    def paths(self) -> list[str]:
        return [e.path for e in self._entries]

    def getvalue(self) -> bytes:
        out = io.BytesIO()
        for ino, entry in enumerate([*self._entries, _Entry("TRAILER!!!", 0)], start=1):
            name = entry.path.encode() + b"\0"
            fields = [
                ino if entry.mode else 0, entry.mode, 0, 0,
                2 if stat.S_ISDIR(entry.mode) else 1, 0, len(entry.data),
                0, 0, entry.rdev[0], entry.rdev[1], len(name), 0,
            ]  # fmt: skip
            out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name)
            out.write(b"\0" * (-out.tell() % 4))
            out.write(entry.data)
            out.write(b"\0" * (-out.tell() % 4))
        return out.getvalue()


def busybox_applets(busybox: Path) -> list[str]:
    """Applet paths (e.g. `bin/sh`, `sbin/init`) as the busybox binary itself lists them."""
    done = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip().lstrip("/") for line in done.stdout.splitlines() if line.strip()]


def build_initramfs(
    *,
    busybox: Path,
    modules: list[ModuleInfo],
    release: dict[str, str],
) -> bytes:
    """The gzip-compressed initramfs for the guest (deterministic for the same inputs)."""
    cpio = CpioWriter()
    for d in _DIRS:
        cpio.directory(d)
    cpio.directory("tmp", 0o1777)
    cpio.symlink("var/run", "/run")
    cpio.char_device("dev/console", 5, 1)
    cpio.char_device("dev/null", 1, 3, 0o666)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in busybox_applets(busybox):
        if applet != "bin/busybox" and applet.split("/")[0] in ("bin", "sbin", "usr"):
            cpio.symlink(applet, "/bin/busybox")
    for guest_path, name, mode in _GUEST_FILES:
        cpio.file(guest_path, (FILES / name).read_bytes(), mode)
    load_order = []
    for mod in modules:
        cpio.file(f"lib/modules/{mod.name}.ko", mod.path.read_bytes())
        load_order.append(f"{mod.name}.ko")
    cpio.file("etc/modules.load", ("\n".join(load_order) + "\n").encode())
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/group", b"root:x:0:\n")
    cpio.file("etc/hosts", b"127.0.0.1 localhost\n")
    cpio.file("etc/dvp-guest-release", "".join(f"{k}={v}\n" for k, v in release.items()).encode())
    return gzip.compress(cpio.getvalue(), compresslevel=9, mtime=0)
