"""The node image cache, and the small interface through which images are pulled into it.

Instances attach DVCR images read-only from this cache, and volumes are copied out of it, so a
volume never depends on its source image afterwards. Cache entries are `<key>.img` (the disk in
its own format) with a `<key>.json` record (ref, digest, format, virtual size); the key is the
image digest when the reference pins one, else a hash of the reference. An entry appears only
when complete (pulled to a partial file, then renamed), so concurrent users and crashes never
see half an image.

Pulling is behind `ImageSource` (`handles(ref)`, `pull(ref, dest, digest=, progress=)`):
- `LocalFileSource` takes `file:///path` references (tests, and hosts without DVCR yet);
- DVCR plugs in as another source (its client's `pull_disk(ref, dest, ...)`), registered by
  whoever builds the agent (`Agent(..., image_sources=[...])`), since components never import
  each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

Progress = Callable[[int, int], None]
"""progress(done_bytes, total_bytes)"""


class ImageError(RuntimeError):
    """An image could not be pulled or inspected; the message names the reference."""


@dataclass(frozen=True)
class CachedImage:
    ref: str
    path: Path
    format: str
    virtual_size: int


class ImageSource(Protocol):
    def handles(self, ref: str) -> bool: ...

    def pull(self, ref: str, dest: Path, *, digest: str | None, progress: Progress | None) -> None:
        """Write the image's disk file to `dest` (any format qemu-img reads)."""


class LocalFileSource:
    """`file:///path/to/disk.qcow2` references: copied, so the cache owns its bytes."""

    def handles(self, ref: str) -> bool:
        return ref.startswith("file://")

    def pull(self, ref: str, dest: Path, *, digest: str | None, progress: Progress | None) -> None:
        src = Path(unquote(urlparse(ref).path))
        if not src.is_file():
            raise ImageError(f"image {ref}: {src} is not a file")
        total = src.stat().st_size
        sha = hashlib.sha256()
        done = 0
        with src.open("rb") as fin, dest.open("wb") as fout:
            while chunk := fin.read(1 << 20):
                fout.write(chunk)
                if digest:
                    sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
            fout.flush()
            os.fsync(fout.fileno())
        if digest and f"sha256:{sha.hexdigest()}" != digest:
            raise ImageError(f"image {ref}: content digest sha256:{sha.hexdigest()} differs from {digest}")


def qemu_img_info(path: Path) -> dict[str, object]:
    """`qemu-img info` of a file (also while QEMU has it open: --force-share)."""
    done = subprocess.run(["qemu-img", "info", "--force-share", "--output=json", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageError(f"qemu-img info {path}: {done.stderr.strip()}")
    info: dict[str, object] = json.loads(done.stdout)
    return info


class ImageCache:
    def __init__(self, directory: Path, sources: Sequence[ImageSource]) -> None:
        self.dir = directory
        self.sources = list(sources)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def key(ref: str, digest: str | None) -> str:
        if digest and digest.startswith("sha256:"):
            return digest.split(":", 1)[1]
        return "ref-" + hashlib.sha256(ref.encode()).hexdigest()[:32]

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, ref: str, digest: str | None = None) -> CachedImage | None:
        """The cached image, or None when it has not been pulled yet."""
        key = self.key(ref, digest)
        record = self.dir / f"{key}.json"
        path = self.dir / f"{key}.img"
        if not (record.exists() and path.exists()):
            return None
        data = json.loads(record.read_text())
        return CachedImage(ref=data["ref"], path=path, format=data["format"], virtual_size=int(data["virtualSize"]))

    def ensure(self, ref: str, digest: str | None = None, *, progress: Progress | None = None) -> CachedImage:
        """Pull `ref` into the cache unless it is there (one pull per image at a time)."""
        key = self.key(ref, digest)
        with self._lock(key):
            if (cached := self.get(ref, digest)) is not None:
                return cached
            source = next((s for s in self.sources if s.handles(ref)), None)
            if source is None:
                raise ImageError(f"image {ref}: no image source handles this reference (DVCR is not configured on "
                                 "this node; local files are given as file:///path)")
            self.dir.mkdir(parents=True, exist_ok=True)
            partial = self.dir / f".{key}.partial"
            try:
                source.pull(ref, partial, digest=digest, progress=progress)
                info = qemu_img_info(partial)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            fmt = str(info.get("format", "raw"))
            if fmt not in ("qcow2", "raw"):
                converted = self.dir / f".{key}.qcow2.partial"
                convert(partial, fmt, converted, "qcow2")
                partial.unlink()
                partial, fmt = converted, "qcow2"
            os.replace(partial, self.dir / f"{key}.img")
            record = {"ref": ref, "digest": digest, "format": fmt, "virtualSize": int(str(info["virtual-size"]))}
            tmp = self.dir / f".{key}.json.tmp"
            tmp.write_text(json.dumps(record))
            os.replace(tmp, self.dir / f"{key}.json")
            cached = self.get(ref, digest)
            assert cached is not None
            return cached

    def remove(self, ref: str, digest: str | None = None) -> None:
        key = self.key(ref, digest)
        with self._lock(key):
            for suffix in (".json", ".img"):
                (self.dir / f"{key}{suffix}").unlink(missing_ok=True)


def convert(src: Path, src_format: str, dest: Path, dest_format: str, *, progress: Progress | None = None) -> None:
    """`qemu-img convert` (a full, independent copy), reporting progress from its `-p` output."""
    cmd = ["qemu-img", "convert", "-p", "-f", src_format, "-O", dest_format, str(src), str(dest)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    buf = ""
    while chunk := proc.stdout.read(64):
        buf += chunk
        *done, buf = buf.replace("\r", "\n").split("\n")
        for line in done:
            pct = line.strip().lstrip("(").split("/")[0]
            try:
                value = float(pct)
            except ValueError:
                continue
            if progress:
                progress(int(value * 100), 10000)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        dest.unlink(missing_ok=True)
        raise ImageError(f"qemu-img convert {src} -> {dest} failed: {err.strip()}")
