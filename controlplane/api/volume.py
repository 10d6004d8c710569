"""The InternalVirtualDiskVolume spec: one typed contract for the disk controller (writer) and
the node handler (reader).

The disk controller builds the spec with `VolumeSpec.to_api()` (and grows it with
`size_patch`); a volume's initial content is empty, a DVCR image, or another volume of the same
node (`source.volume`: snapshots and disks made from them, `take` to move a temporary
snapshot's file rather than copy it, `snapshot` for a snapshot's own volume). A VMOP Restore
asks for a volume's content to go back to one of its snapshots with `revert_patch`
(`spec.revert`: the snapshot's volume and the operation's id; the node handler writes the id to
`status.reverted` once done, or to `status.revertRefused` when a running VM had the volume).
The node handler reads the spec back with `parse_volume`, which checks the size is a positive
whole number of bytes (a `SpecError` naming `spec.size` otherwise). Phases are
`internal.VolumePhase`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.api.instance import SpecError, quantity_bytes, shape_errors_are_spec_errors
from controlplane.api.internal import VOLUME_FINALIZER
from controlplane.api.resources import NODE_LABEL, VOLUMES

__all__ = ["Revert", "SpecError", "VolumeSpec", "parse_volume", "requested_revert", "revert_patch", "revert_refused",
           "reverted", "size_patch"]


@dataclass(frozen=True)
class Revert:
    """The volume's content goes back to that of `volume` (a snapshot's volume of the same node):
    its file is replaced by a new empty overlay on the snapshot's file. Done once the volume's
    `status.reverted` is `id`; a new id asks again."""
    volume: str
    id: str


@dataclass(frozen=True)
class VolumeSpec:
    node_name: str
    size_bytes: int
    image_ref: str | None = None
    """DVCR image to copy the initial content from; None: an empty (zeroed) volume."""
    image_digest: str | None = None
    source_volume: str | None = None
    """Another volume of the same namespace and node to copy (a snapshot's, or a disk's to snapshot)."""
    require_consistency: bool = False
    """With `source_volume` in use by a running VM: refuse the copy unless its filesystems freeze."""
    take_source: bool = False
    """Move `source_volume`'s file into this volume instead of copying it: the source is a VMOP
    Clone's temporary snapshot, read by this volume alone and deleted right after (one copy of
    the data per clone, not two). The source volume then has no file; deleting it is a no-op."""
    snapshot: bool = False
    """This volume is a snapshot of `source_volume` (read-only once made): on its node, the
    source's file becomes this volume's when no running VM uses it, and the source gets a new
    overlay on it; a volume made from a snapshot is in turn an overlay on the snapshot's file."""
    revert: Revert | None = None
    """Asked after creation, by `revert_patch` (a VMOP Restore); never part of a new volume's spec."""

    def to_api(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"nodeName": self.node_name, "size": str(self.size_bytes)}
        if self.image_ref:
            spec["source"] = {"image": {"ref": self.image_ref}}
            if self.image_digest:
                spec["source"]["image"]["digest"] = self.image_digest
        elif self.source_volume:
            spec["source"] = {"volume": {"name": self.source_volume, "requireConsistency": self.require_consistency}}
            if self.take_source:
                spec["source"]["volume"]["take"] = True
            if self.snapshot:
                spec["source"]["volume"]["snapshot"] = True
        return spec

    def new_object(self, name: str, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
        """The volume to create, labelled with its node and owned by `owner` (an ownerReference).
        It carries the node handler's finalizer from the start: the node handler, which removes it
        once the file is deleted, then has no write of its own to make before provisioning."""
        return {"apiVersion": VOLUMES.api_version, "kind": VOLUMES.kind,
                "metadata": {"name": name, "namespace": namespace, "labels": {NODE_LABEL: self.node_name},
                             "ownerReferences": [owner], "finalizers": [VOLUME_FINALIZER]},
                "spec": self.to_api()}


def size_patch(size_bytes: int) -> dict[str, Any]:
    """The merge patch that grows a volume (volumes only grow)."""
    return {"spec": {"size": str(size_bytes)}}


def revert_patch(revert: Revert) -> dict[str, Any]:
    """The merge patch that asks for `revert`."""
    return {"spec": {"revert": {"volume": revert.volume, "id": revert.id}}}


def requested_revert(obj: dict[str, Any]) -> Revert | None:
    """The revert `spec.revert` asks for, if any (without parsing the rest of the spec)."""
    revert = (obj.get("spec") or {}).get("revert") or {}
    return Revert(str(revert["volume"]), str(revert["id"])) if revert.get("volume") and revert.get("id") else None


def reverted(obj: dict[str, Any]) -> str | None:
    """The id of the last revert the node handler finished on this volume."""
    return (obj.get("status") or {}).get("reverted") or None


def revert_refused(obj: dict[str, Any]) -> str | None:
    """The id of a revert the node handler refused for good (a running VM had the volume)."""
    return (obj.get("status") or {}).get("revertRefused") or None


@shape_errors_are_spec_errors
def parse_volume(obj: dict[str, Any]) -> VolumeSpec:
    """Typed spec of a volume as the API returns it; raises SpecError."""
    spec = obj.get("spec") or {}
    image = (spec.get("source") or {}).get("image") or {}
    volume = (spec.get("source") or {}).get("volume") or {}
    return VolumeSpec(node_name=str(spec.get("nodeName") or ""), size_bytes=quantity_bytes(spec.get("size"), "spec.size"),
                      image_ref=image.get("ref") or None, image_digest=image.get("digest") or None,
                      source_volume=volume.get("name") or None,
                      require_consistency=bool(volume.get("requireConsistency", False)),
                      take_source=bool(volume.get("take", False)), snapshot=bool(volume.get("snapshot", False)),
                      revert=requested_revert(obj))
