"""A VirtualDisk's data source, resolved: empty, an existing image in DVCR, a Ready
VirtualDiskSnapshot (its volume copied on its node; taken over, not copied, when the snapshot is
the temporary one of the VMOP Clone that makes this disk), or an import of the disk's own (HTTP,
ContainerImage, Upload) into DVCR as `vd/<ns>/<name>`, from which the node handler fills the
volume."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINE_SNAPSHOTS,
    VOLUMES,
)
from controlplane.api.v1alpha2 import VDCondition as C
from controlplane.controllers.dvcr_access import DvcrApi, DvcrError, Importer
from controlplane.controllers.image.controller import apply_result
from controlplane.controllers.image.importing import advance, apply_progress
from controlplane.controllers.runtime.state import State
from controlplane.controllers.snapshot.clone import CLONED_BY


@dataclass
class Source:
    size: int = 0
    image_ref: str = ""
    problem: str = ""
    reason: str = ""
    failed: bool = False
    waiting_upload: bool = False
    importing: bool = False
    source_volume: str = ""
    """A VirtualDiskSnapshot's volume to copy (the disk is then made on `node`, the snapshot's)."""
    take_source: bool = False
    """`source_volume` is a VMOP Clone's temporary snapshot's, for this disk alone: moved, not copied."""
    node: str = ""


class DiskSources:
    def __init__(self, importer: Importer, api: DvcrApi) -> None:
        self.importer, self.api = importer, api

    def resolve(self, state: State) -> Source:
        ds = state.spec.get("dataSource") or {}
        kind = ds.get("type")
        if not ds:
            return Source()
        if kind == "ObjectRef":
            ref = ds.get("objectRef") or {}
            if ref.get("kind") == "VirtualDiskSnapshot":
                return self._from_snapshot(state, str(ref.get("name") or ""))
            res = VIRTUAL_IMAGES if ref.get("kind") == "VirtualImage" else CLUSTER_VIRTUAL_IMAGES
            if ref.get("kind") not in ("VirtualImage", "ClusterVirtualImage"):
                return Source(problem=f"objectRef kind {ref.get('kind')!r} is not supported on this platform",
                              reason=C.DatasourceReadyReason.IMAGE_NOT_FOUND, failed=True)
            image = state.get(res, ref.get("name", ""), state.namespace if res.namespaced else "")
            not_found = C.DatasourceReadyReason.IMAGE_NOT_FOUND if res.namespaced \
                else C.DatasourceReadyReason.CLUSTER_IMAGE_NOT_FOUND
            not_ready = C.DatasourceReadyReason.IMAGE_NOT_READY if res.namespaced \
                else C.DatasourceReadyReason.CLUSTER_IMAGE_NOT_READY
            if image is None:
                return Source(problem=f"{ref.get('kind')} {ref.get('name')!r} does not exist: create it, or fix "
                                      "spec.dataSource.objectRef", reason=not_found)
            status = image.get("status") or {}
            if status.get("phase") != "Ready":
                return Source(problem=f"{ref.get('kind')} {ref.get('name')!r} is {status.get('phase') or 'Pending'}",
                              reason=not_ready)
            return Source(size=int((status.get("size") or {}).get("unpackedBytes") or 0),
                          image_ref=(status.get("target") or {}).get("registryURL", ""))
        # HTTP, ContainerImage, Upload: the disk's own import into DVCR
        repo = f"vd/{state.namespace}/{state.name}"
        if state.status.get("sourceUID") == repo:  # imported already (the repository is recorded once done)
            return Source(size=int(state.meta.get("annotations", {}).get(SIZE_ANNOTATION, "0")),
                          image_ref=f"{state.ctx.settings.dvcr_address}/{repo}:latest")
        outcome = advance(state, self.importer, self.api, repo)
        if outcome.upload_url:
            state.status["imageUploadURLs"] = {"external": outcome.upload_url, "inCluster": outcome.upload_url}
            state.status["uploadCommand"] = f"curl -T <image file> '{outcome.upload_url}'"
        if outcome.state == "done":
            scratch: dict[str, Any] = {}
            apply_result(scratch, outcome.result, "")
            size = int(scratch["size"]["unpackedBytes"])
            state.meta.setdefault("annotations", {})[SIZE_ANNOTATION] = str(size)
            state.status["sourceUID"] = repo
            return Source(size=size, image_ref=f"{state.ctx.settings.dvcr_address}/{repo}:latest")
        if outcome.state == "running":
            apply_progress(state.status, outcome.progress)
            return Source(problem=outcome.message, reason=C.DatasourceReadyReason.DATASOURCE_READY, importing=True)
        if outcome.state == "upload":
            return Source(problem=outcome.message, reason=C.DatasourceReadyReason.DATASOURCE_READY, waiting_upload=True)
        return Source(problem=outcome.message, reason=outcome.reason or "ProvisioningFailed",
                      failed=outcome.state == "failed")

    @staticmethod
    def _from_snapshot(state: State, name: str) -> Source:
        snap = state.get(VIRTUAL_DISK_SNAPSHOTS, name)
        reason = C.DatasourceReadyReason.VIRTUAL_DISK_SNAPSHOT_NOT_READY
        own = state.get(VOLUMES, state.name)
        if own is not None and (snap is None or (snap.get("status") or {}).get("phase") != "Ready"):
            # made already: the disk is a copy and keeps its dataSource when the snapshot goes (as on DVP)
            return Source(size=int((own.get("status") or {}).get("capacityBytes") or 0),
                          node=str((own.get("spec") or {}).get("nodeName") or ""))
        if snap is None:
            return Source(problem=f"VirtualDiskSnapshot {name!r} does not exist: create it, or fix "
                                  "spec.dataSource.objectRef", reason=reason)
        status = snap.get("status") or {}
        volume = state.get(VOLUMES, str(status.get("volumeSnapshotName") or ""))
        if status.get("phase") != "Ready" or volume is None:
            return Source(problem=f"VirtualDiskSnapshot {name!r} is {status.get('phase') or 'Pending'}", reason=reason)
        size = int((volume.get("status") or {}).get("capacityBytes") or 0)
        return Source(size=size, source_volume=volume["metadata"]["name"], node=volume["spec"]["nodeName"],
                      take_source=_temporary_for(state, snap))

    def cleanup(self, state: State) -> None:
        """A deleted disk's own DVCR image goes too."""
        self.importer.forget((state.resource.plural, state.namespace, state.name))
        if state.status.get("sourceUID"):
            with contextlib.suppress(DvcrError):  # DVCR's GC grace removes it later anyway
                self.api.delete_tag(str(state.status["sourceUID"]))


SIZE_ANNOTATION = "virtualization.deckhouse.io/source-unpacked-size"


def _temporary_for(state: State, snap: dict[str, Any]) -> bool:
    """The disk snapshot belongs to the temporary VirtualMachineSnapshot of the VMOP Clone that
    made this disk (its uid in the disk's cloned-by annotation): nothing else reads it, and the
    operation deletes it once its disks are Ready."""
    op_uid = ((state.meta.get("annotations") or {}).get(CLONED_BY)) or ""
    if not op_uid:
        return False
    for ref in (snap.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") != "VirtualMachineSnapshot":
            continue
        vms = state.get(VIRTUAL_MACHINE_SNAPSHOTS, str(ref.get("name") or ""))
        if vms is not None and vms["metadata"].get("uid") == ref.get("uid") and any(
                o.get("kind") == "VirtualMachineOperation" and o.get("uid") == op_uid
                for o in vms["metadata"].get("ownerReferences") or []):
            return True
    return False
