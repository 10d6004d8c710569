"""`pull_disk`: the node handler's way to get a VM disk out of DVCR into a local file.

    disk = await pull_disk("cvi/ubuntu:latest", Path("/var/lib/dvp/images/ubuntu.qcow2"),
                           connection=DvcrConnection.from_info(Path(".../dvcr.json"), user="node"),
                           progress=callback)

It reads the manifest (format and virtual size from its annotations), streams the single
layer, checks its digest as it arrives, and writes the `disk/` file to `DEST.partial`,
renamed to DEST only when everything checked out (so DEST is never half a disk). With
`want_format` (e.g. "qcow2") a disk stored in another format (vmdk, vdi, raw) is converted
with `qemu-img convert` from the partial file into `.DEST.convert`, renamed to DEST when
the conversion succeeded; the partial file is removed either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from controlplane.dvcr.client import RegistryClient
from controlplane.dvcr.credentials import DvcrConnection
from controlplane.dvcr.importer import artifact, formats, tarstream
from controlplane.dvcr.importer.progress import ProgressCallback, ProgressMeter


class PullError(Exception):
    pass


@dataclass(frozen=True)
class PulledDisk:
    path: Path
    format: str
    virtual_size: int
    size: int
    digest: str
    layer_digest: str
    annotations: dict[str, str]


def split_ref(ref: str, registry: str) -> tuple[str, str]:
    """'[registry/]repo[:tag|@digest]' -> (repo, reference)."""
    if ref.startswith(registry + "/"):
        ref = ref[len(registry) + 1:]
    if "@" in ref:
        repo, _, reference = ref.partition("@")
    elif ":" in ref.rsplit("/", 1)[-1]:
        repo, _, reference = ref.rpartition(":")
    else:
        repo, reference = ref, "latest"
    return repo, reference


async def pull_disk(ref: str, dest: Path, *, connection: DvcrConnection, progress: ProgressCallback | None = None,
                    want_format: str | None = None) -> PulledDisk:
    repo, reference = split_ref(ref, connection.registry)
    partial = dest.with_name(f".{dest.name}.partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    async with RegistryClient(connection.url, ssl_context=connection.ssl_context(), username=connection.username,
                              password=connection.password, token=connection.token) as client:
        body, _media_type, digest = await client.get_manifest(repo, reference)
        try:
            disk = artifact.parse_artifact(orjson.loads(body))
        except (ValueError, KeyError) as exc:
            raise PullError(f"{connection.registry}/{repo}:{reference}: {exc}") from exc
        meter = ProgressMeter(progress, total=disk.stored_size)
        hasher = disk.layer.hasher()
        loop = asyncio.get_running_loop()
        async with client.blob(repo, disk.layer) as resp:
            async def layer_bytes() -> AsyncIterator[bytes]:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    await loop.run_in_executor(None, hasher.update, chunk)
                    meter.add(len(chunk))
                    yield chunk

            reader = tarstream.ByteReader(layer_bytes())
            found = await tarstream.find_disk(reader)
            if found is None:
                raise PullError(f"{repo}:{reference}: the layer holds no file under disk/")
            entry, data = found
            size = 0
            with partial.open("wb") as f:
                try:
                    async for piece in data:
                        await loop.run_in_executor(None, f.write, piece)
                        size += len(piece)
                    await reader.drain()
                    if hasher.hexdigest() != disk.layer.hex:
                        raise PullError(f"{repo}:{reference}: layer {disk.layer} arrived with a different digest")
                    f.flush()
                    await loop.run_in_executor(None, os.fdatasync, f.fileno())
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        partial.unlink()
                    raise
    fmt = disk.format
    try:
        _check_self_contained(partial, fmt)
    except PullError as exc:
        partial.unlink(missing_ok=True)
        raise PullError(f"{repo}:{reference}: {exc}") from None
    if want_format and want_format != fmt and not (fmt == "iso" and want_format == "raw"):
        try:
            await _convert(partial, dest, fmt, want_format)
        finally:
            partial.unlink(missing_ok=True)
        fmt = want_format
        size = dest.stat().st_size
    else:
        os.replace(partial, dest)
    meter.finish()
    return PulledDisk(dest, fmt, disk.virtual_size, size, str(digest), str(disk.layer), disk.annotations)


def _check_self_contained(path: Path, fmt: str) -> None:
    """The importer's format checks again, on the node, before QEMU or qemu-img opens the file: an
    image stored by an earlier version may name a host file (a backing or data file, VMDK extents)."""
    if fmt not in ("qcow2", "vmdk"):
        return
    with path.open("rb") as f:
        head = f.read(formats.HEAD_BYTES)
    try:
        formats.detect(head)
    except formats.FormatError as exc:
        raise PullError(f"not used on this node: {exc}") from None


async def _convert(src: Path, dest: Path, src_format: str, dst_format: str) -> None:
    tmp = dest.with_name(f".{dest.name}.convert")
    proc = await asyncio.create_subprocess_exec(
        "qemu-img", "convert", "-f", "raw" if src_format == "iso" else src_format, "-O", dst_format, str(src),
        str(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise PullError(f"qemu-img convert {src_format} -> {dst_format} failed: {err.decode().strip()}")
    os.replace(tmp, dest)
