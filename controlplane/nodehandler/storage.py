"""Volume files: the qcow2 disks behind InternalVirtualDiskVolumes, on this node's disk.

A volume is created once, either empty (`qcow2_create`: the bytes `qemu-img create` writes) or as
a full copy of a cached image (`qemu-img convert` to qcow2, no backing file: the volume stays
valid when the image is deleted from DVCR and from the cache), then grown to its requested size.
Creation goes through a partial file renamed into place, so a crash never leaves a half-made
volume at the real path. Sizes only grow: offline with `qemu-img resize`, online through
libvirt's block resize (domains.py), which the guest sees as a capacity change of the disk.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from controlplane.nodehandler import qcow2_create, qcow2_header
from controlplane.nodehandler.images import CachedImage, ImageError, Progress, convert, qemu_img_info
from controlplane.nodehandler.layout import Layout


class VolumeError(RuntimeError):
    """A volume operation failed; the message names the volume file."""


def run_tool(cmd: list[str], what: str) -> None:
    """Run a tool (qemu-img) on volume files; a VolumeError starting with `what`, with the tool's
    own error, when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise VolumeError(f"{what}: `{' '.join(cmd[:3])} ...` failed: {done.stderr.strip()}")


def capacity(path: Path) -> int:
    """The virtual size of a volume file (bytes): from its qcow2 header, else `qemu-img info`."""
    header = qcow2_header.read(path)
    if header is not None:
        return header.virtual_size
    try:
        return int(str(qemu_img_info(path)["virtual-size"]))
    except (ImageError, KeyError, ValueError) as exc:
        raise VolumeError(f"reading the size of {path}: {exc}") from exc


def create_empty(path: Path, size: int) -> None:
    partial = Layout.partial(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    create_qcow2(partial, size, None, f"creating volume {path}")
    os.replace(partial, path)


def create_qcow2(path: Path, size: int, backing: Path | None, what: str) -> None:
    """`path` (which must not exist): an empty qcow2 file of `size` bytes on `backing` (or none),
    fsynced. `qcow2_create` writes it; what the writer cannot make goes to qemu-img, whose error
    (a VolumeError starting with `what`) says what is wrong."""
    name = str(backing.absolute()) if backing is not None else None
    try:
        qcow2_create.write(path, size, name)
        return
    except ValueError:
        path.unlink(missing_ok=True)
    options = ["-F", "qcow2", "-u", "-b", name] if name else ["-o", "preallocation=off"]
    run_tool(["qemu-img", "create", "-q", "-f", "qcow2", *options, str(path), str(size)], what)
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def create_from_image(path: Path, image: CachedImage, size: int, *, progress: Progress | None = None) -> None:
    """A standalone qcow2 copy of `image`, grown to `size` (which must hold the image)."""
    if size < image.virtual_size:
        raise VolumeError(f"volume {path.name}: the requested size {size} is smaller than the image {image.ref} "
                          f"({image.virtual_size} bytes): ask for at least {image.virtual_size}")
    partial = Layout.partial(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    try:
        convert(image.path, image.format, partial, "qcow2", progress=progress)
        if size > image.virtual_size:
            run_tool(["qemu-img", "resize", "-q", "-f", "qcow2", str(partial), str(size)], f"resizing volume {path}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def resize_offline(path: Path, size: int) -> None:
    run_tool(["qemu-img", "resize", "-q", "-f", "qcow2", str(path), str(size)], f"resizing volume {path}")


def delete(path: Path) -> None:
    path.unlink(missing_ok=True)
    Layout.partial(path).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the namespace directory, once empty
