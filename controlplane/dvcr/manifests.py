"""Manifests, dispatched by media type to one handler each.

A handler validates the JSON document of its media type and says what it references:
blobs that must exist (config and layers of an image manifest), manifests that must exist
(the children of an index or manifest list), and an optional `subject` (the referrers API).
The repository store (`repository`) uses this to refuse a manifest whose references are
missing (MANIFEST_BLOB_UNKNOWN) and GC uses it to mark what is reachable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.dvcr.digest import Digest, parse_digest
from controlplane.dvcr.errors import RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MAX_MANIFEST = 4 * 1024 * 1024

# Layers that live elsewhere (Windows base layers, OCI non-distributable): not required here.
FOREIGN_LAYERS = {
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
}


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str | None = None


@dataclass
class Manifest:
    media_type: str
    blobs: list[Descriptor]
    children: list[Descriptor]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str]


def _invalid(message: str, field_: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", f"{field_}: {message}", detail={"field": field_})


def _descriptor(obj: Any, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise _invalid("must be a descriptor object", where)
    mt = obj.get("mediaType")
    if not isinstance(mt, str) or not mt:
        raise _invalid("mediaType is required", f"{where}.mediaType")
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid("size must be a non-negative integer", f"{where}.size")
    try:
        d = parse_digest(str(obj.get("digest", "")), code="MANIFEST_INVALID")
    except RegistryError as exc:
        raise _invalid(exc.message, f"{where}.digest") from exc
    ann = obj.get("annotations") or {}
    if not isinstance(ann, dict):
        raise _invalid("annotations must be a string map", f"{where}.annotations")
    at = obj.get("artifactType")
    return Descriptor(mt, d, size, ann, at if isinstance(at, str) else None)


def _list(doc: dict[str, Any], key: str, *, required: bool) -> list[Any]:
    value = doc.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise _invalid("must be a list", key)
    return value


def _image(doc: dict[str, Any], media_type: str) -> Manifest:
    config = _descriptor(doc.get("config"), "config")
    layers = [_descriptor(x, f"layers[{i}]") for i, x in enumerate(_list(doc, "layers", required=True))]
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("must be a string", "artifactType")
    blobs = [config] + [layer for layer in layers if layer.media_type not in FOREIGN_LAYERS]
    return Manifest(media_type, blobs, [], subject, artifact_type or config.media_type,
                    doc.get("annotations") or {})


def _index(doc: dict[str, Any], media_type: str) -> Manifest:
    children = [_descriptor(x, f"manifests[{i}]") for i, x in enumerate(_list(doc, "manifests", required=True))]
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType")
    return Manifest(media_type, [], children, subject, artifact_type if isinstance(artifact_type, str) else None,
                    doc.get("annotations") or {})


HANDLERS: dict[str, Callable[[dict[str, Any], str], Manifest]] = {
    OCI_MANIFEST: _image,
    DOCKER_MANIFEST: _image,
    OCI_INDEX: _index,
    DOCKER_LIST: _index,
}
MANIFEST_TYPES = tuple(HANDLERS)


def parse(body: bytes, content_type: str | None) -> Manifest:
    """Validate a manifest of any supported media type; MANIFEST_INVALID names the field."""
    if len(body) > MAX_MANIFEST:
        raise RegistryError("SIZE_INVALID", f"manifest is {len(body)} bytes; the limit is {MAX_MANIFEST}", status=413)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RegistryError("MANIFEST_INVALID", f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise RegistryError("MANIFEST_INVALID", "manifest must be a JSON object")
    if doc.get("schemaVersion") != 2:
        raise _invalid(f"must be 2 (got {doc.get('schemaVersion')!r}); schema 1 manifests are not supported",
                       "schemaVersion")
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip()
    if header in ("", "application/json", "application/octet-stream"):
        header = ""
    media_type = declared or header or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    if declared and header and declared != header:
        raise _invalid(f"{declared!r} does not match the Content-Type {header!r}", "mediaType")
    handler = HANDLERS.get(media_type)
    if handler is None:
        raise RegistryError("MANIFEST_INVALID", f"manifest media type {media_type!r} is not supported; use one of "
                            + ", ".join(MANIFEST_TYPES), detail={"mediaType": media_type})
    return handler(doc, media_type)


def descriptor_json(d: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.media_type, "digest": str(d.digest), "size": d.size}
    if d.artifact_type:
        out["artifactType"] = d.artifact_type
    if d.annotations:
        out["annotations"] = d.annotations
    return out
