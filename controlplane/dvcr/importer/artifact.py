"""The containerDisk artifact: what an imported image looks like in DVCR.

One uncompressed tar layer holding `disk/` and `disk/disk.<ext>` (owner 107:107, the qemu
user KubeVirt expects; mtime 0, so the same disk always gives the same layer digest), an
OCI image config whose labels are the ones DVP's importer writes, and an OCI image
manifest whose annotations describe the disk:

    dvcr.deckhouse.io/format          qcow2 | raw | iso | vmdk | vdi
    dvcr.deckhouse.io/virtual-size    bytes the guest sees
    dvcr.deckhouse.io/unpacked-size   bytes of disk/disk.<ext> (after gzip/xz unpacking)
    dvcr.deckhouse.io/stored-size     bytes the layer takes in DVCR
    dvcr.deckhouse.io/source-size     bytes read from the source (compressed, if it was)
    dvcr.deckhouse.io/compression     gzip | xz | none (of the source)
    dvcr.deckhouse.io/source          where it came from (URLs without credentials or query)
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from typing import Any

import orjson

from controlplane.dvcr.digest import Digest, parse_digest
from controlplane.dvcr.importer.formats import EXTENSIONS
from controlplane.dvcr.manifests import OCI_MANIFEST

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
PREFIX = "dvcr.deckhouse.io/"
A_FORMAT, A_VIRTUAL, A_UNPACKED, A_STORED = (PREFIX + k for k in ("format", "virtual-size", "unpacked-size",
                                                                 "stored-size"))
A_SOURCE_SIZE, A_COMPRESSION, A_SOURCE = (PREFIX + k for k in ("source-size", "compression", "source"))
QEMU_UID = 107
BLOCK = 512


def disk_name(fmt: str) -> str:
    return f"disk/disk.{EXTENSIONS[fmt]}"


def _info(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.uid = ti.gid = QEMU_UID
    ti.uname = ti.gname = ""
    if directory:
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o555
    else:
        ti.mode = 0o444
    return ti


def tar_head(fmt: str, size: int) -> bytes:
    """The tar bytes before the disk's data: the `disk/` folder and the file's header (PAX
    records when the size needs more than ustar's 8 GiB)."""
    return (_info("disk/", directory=True).tobuf(tarfile.PAX_FORMAT)
            + _info(disk_name(fmt), size=size).tobuf(tarfile.PAX_FORMAT))


def tar_tail(size: int) -> bytes:
    """Padding of the file's data to a whole block, then the end-of-archive marker."""
    return b"\0" * ((-size) % BLOCK) + b"\0" * (2 * BLOCK)


def layer_size(fmt: str, size: int) -> int:
    return len(tar_head(fmt, size)) + size + len(tar_tail(size))


def config_json(layer: Digest, labels: dict[str, str]) -> bytes:
    return orjson.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [str(layer)]},
        "history": [{"created_by": "dvp dvcr import", "comment": "VM disk image under disk/"}],
    }, option=orjson.OPT_SORT_KEYS)


def manifest_json(config: Digest, config_size: int, layer: Digest, layer_size_: int,
                  annotations: dict[str, str]) -> bytes:
    return orjson.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": str(config), "size": config_size},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": str(layer), "size": layer_size_}],
        "annotations": annotations,
    })


def dvp_labels(fmt: str, virtual_size: int, source_size: int) -> dict[str, str]:
    """The config labels DVP's own importer writes, so DVP tooling reads our images too."""
    return {"source-image-format": fmt, "source-image-virtual-size": str(virtual_size),
            "source-image-size": str(source_size)}


@dataclass(frozen=True)
class DiskArtifact:
    """What a DVCR manifest says about the disk it carries."""

    format: str
    virtual_size: int
    unpacked_size: int
    stored_size: int
    layer: Digest
    layer_media_type: str
    annotations: dict[str, str]


def parse_artifact(manifest: dict[str, Any]) -> DiskArtifact:
    layers = manifest.get("layers") or []
    if len(layers) != 1:
        raise ValueError(f"a DVCR disk image has one layer; this manifest has {len(layers)}")
    ann = manifest.get("annotations") or {}
    layer = layers[0]
    if A_FORMAT not in ann:
        raise ValueError(f"manifest has no {A_FORMAT} annotation: not an image imported into DVCR")
    return DiskArtifact(ann[A_FORMAT], int(ann.get(A_VIRTUAL, 0)), int(ann.get(A_UNPACKED, 0)),
                        int(layer["size"]), parse_digest(layer["digest"]), layer["mediaType"], dict(ann))
