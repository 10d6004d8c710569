"""Build the guest test image once, cache it, and hand out its files.

The entry point of `nodeimage.guest` (used by `python -m nodeimage.guest build` and by the
test fixtures in `tests/services`). It resolves the Debian packages, derives a cache key from
everything that goes into the image (package versions and hashes, host tool versions, this
package's own source and guest files), and only when no image with that key is cached runs
the steps: download → unpack → modules → initramfs → boot disk → qcow2 → xz. Builds are
serialised by a lock file and published by renaming a finished directory, so concurrent test
runs never see half an image.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nodeimage.guest import disk, initramfs, kmod, packages

FLAVOURS = {"cloud": "linux-image-cloud-amd64", "generic": "linux-image-amd64"}
BUSYBOX_PACKAGE = "busybox-static"
HOST_TOOLS = ["syslinux", "syslinux-common", "mtools", "dosfstools", "fdisk", "qemu-utils"]
KERNEL_CMDLINE = "console=tty0 console=ttyS0,115200n8 panic=0"
_SOURCE_DIR = Path(__file__).parent


class Reporter(Protocol):
    """Where a build reports its steps (the CLI draws them with rich; fixtures log them)."""

    def step(self, description: str) -> None: ...

    def progress(self, done: int, total: int) -> None: ...


class NullReporter:
    def step(self, description: str) -> None:
        pass

    def progress(self, done: int, total: int) -> None:
        pass


@dataclass(frozen=True)
class GuestImage:
    """A built guest image: the same bootable disk as raw, qcow2 and xz-compressed raw."""

    flavour: str
    directory: Path
    manifest: dict[str, Any]

    def _file(self, suffix: str) -> Path:
        return self.directory / f"dvp-guest-{self.flavour}{suffix}"

    @property
    def raw(self) -> Path:
        return self._file(".img")

    @property
    def qcow2(self) -> Path:
        return self._file(".qcow2")

    @property
    def xz(self) -> Path:
        return self._file(".img.xz")

    @property
    def kernel(self) -> Path:
        """The kernel alone, for domains that boot it directly (`<kernel>` in libvirt)."""
        return self._file(".vmlinuz")

    @property
    def initrd(self) -> Path:
        return self._file(".initrd.img")

    def files(self) -> dict[str, Path]:
        return {
            "raw": self.raw,
            "qcow2": self.qcow2,
            "xz": self.xz,
            "kernel": self.kernel,
            "initrd": self.initrd,
        }


def default_cache_dir() -> Path:
    """`$DVP_CACHE/guest`, else `.cache/guest` in the source tree (as `.ci/setup` uses), else ~/.cache."""
    if os.environ.get("DVP_CACHE"):
        return Path(os.environ["DVP_CACHE"]) / "guest"
    root = _SOURCE_DIR.parent.parent
    if (root / "pyproject.toml").exists():
        return root / ".cache" / "guest"
    return Path.home() / ".cache" / "dvp" / "guest"


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(_SOURCE_DIR.rglob("*")):
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(_SOURCE_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _inputs(flavour: str) -> dict[str, Any]:
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown guest image flavour {flavour!r}: choose one of {sorted(FLAVOURS)}")
    kernel, busybox = packages.resolve(FLAVOURS[flavour], BUSYBOX_PACKAGE)
    return {
        "flavour": flavour,
        "kernel": kernel.key(),
        "busybox": busybox.key(),
        "host_tools": {name: packages.installed_version(name) for name in HOST_TOOLS},
        "cmdline": KERNEL_CMDLINE,
        "source": _source_digest(),
    }


def cache_key(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(flavour: str, directory: Path) -> GuestImage | None:
    manifest = directory / "manifest.json"
    if not manifest.exists():
        return None
    image = GuestImage(flavour=flavour, directory=directory, manifest=json.loads(manifest.read_text()))
    return image if all(p.exists() for p in image.files().values()) else None


def ensure_image(
    flavour: str = "cloud",
    *,
    cache_dir: Path | None = None,
    reporter: Reporter | None = None,
    rebuild: bool = False,
) -> GuestImage:
    """The cached image of `flavour`, built first if nothing with the same inputs is cached."""
    rep = reporter or NullReporter()
    cache = cache_dir or default_cache_dir()
    rep.step("resolving Debian packages")
    inputs = _inputs(flavour)
    key = cache_key(inputs)
    final = cache / f"{flavour}-{key}"
    if not rebuild and (image := _load(flavour, final)):
        return image
    with _locked(cache / ".build.lock"):
        if not rebuild and (image := _load(flavour, final)):
            return image  # another run built it while we waited
        work = cache / f".work-{flavour}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            _build(flavour, inputs, key, work / "out", work, cache / "debs", rep)
            shutil.rmtree(final, ignore_errors=True)
            (work / "out").rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for old in cache.glob(f"{flavour}-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    image = _load(flavour, final)
    assert image is not None, f"built image missing from {final}"
    return image


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _build(
    flavour: str, inputs: dict[str, Any], key: str, out: Path, work: Path, debs: Path, rep: Reporter
) -> None:
    started = time.monotonic()
    out.mkdir(parents=True)
    kernel_pkg, busybox_pkg = packages.resolve(FLAVOURS[flavour], BUSYBOX_PACKAGE)
    root = work / "root"
    for pkg in (kernel_pkg, busybox_pkg):
        rep.step(f"downloading {pkg.name} {pkg.version}")
        deb = packages.download(pkg, debs)
        rep.step(f"unpacking {pkg.name}")
        packages.unpack(deb, root)

    rep.step("selecting kernel modules")
    kernel_version = kernel_pkg.name.removeprefix("linux-image-")
    moddir = root / "lib" / "modules" / kernel_version
    modules = kmod.resolve_modules(moddir, kmod.FLAVOUR_MODULES[flavour])
    vmlinuz = root / "boot" / f"vmlinuz-{kernel_version}"

    rep.step(f"building initramfs ({len(modules)} modules)")
    release = {"flavour": flavour, "kernel": kernel_version, "key": key}
    image = GuestImage(flavour=flavour, directory=out, manifest={})
    image.initrd.write_bytes(
        initramfs.build_initramfs(busybox=root / "bin" / "busybox", modules=modules, release=release)
    )
    shutil.copyfile(vmlinuz, image.kernel)

    rep.step("building the partitioned boot disk (SYSLINUX)")
    disk.build_boot_disk(
        image.raw, kernel=image.kernel, initrd=image.initrd, cmdline=KERNEL_CMDLINE, workdir=work
    )
    rep.step("converting to qcow2")
    disk.convert_qcow2(image.raw, image.qcow2)
    rep.step("compressing to xz")
    disk.compress_xz(image.raw, image.xz, progress=rep.progress)

    manifest = {
        "flavour": flavour,
        "key": key,
        "kernel_package": f"{kernel_pkg.name} {kernel_pkg.version}",
        "kernel_version": kernel_version,
        "busybox_package": f"{busybox_pkg.name} {busybox_pkg.version}",
        "modules": [m.name for m in modules],
        "cmdline": KERNEL_CMDLINE,
        "raw_size": image.raw.stat().st_size,
        "raw_sha256": _sha256(image.raw),
        "inputs": inputs,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def export(image: GuestImage, out_dir: Path) -> dict[str, Path]:
    """Copy (hard-link when possible) the image's files and manifest into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    placed: dict[str, Path] = {}
    sources = {**image.files(), "manifest": image.directory / "manifest.json"}
    for kind, src in sources.items():
        name = src.name if kind != "manifest" else f"dvp-guest-{image.flavour}.manifest.json"
        dst = out_dir / name
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        placed[kind] = dst
    return placed
