"""The ClusterVirtualImage and VirtualImage reconcilers (one implementation, two kinds).

Handlers in order:
1. init       — conditions DatasourceReady and Ready start Unknown; the cleanup finalizer;
2. deletion   — the image's DVCR tag is removed and garbage collection runs, then the
                finalizer goes;
3. provision  — Pending -> Provisioning (importer job, with progress and speed) or
                WaitForUserUpload (upload URLs) -> Ready (size, format, cdrom, registry URL)
                or Failed (the importer's reason: an HTTP status, a checksum mismatch, an
                unknown format, an expired upload).
A Ready image is not imported again.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
)
from controlplane.api.v1alpha2 import CVICondition, ImagePhase, VICondition
from controlplane.common import quantity
from controlplane.common.kube.client import Resource
from controlplane.controllers.dvcr_access import DvcrApi, DvcrError, Importer
from controlplane.controllers.image.importing import Outcome, advance, apply_progress
from controlplane.controllers.names import FINALIZER_CVI, FINALIZER_VI
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, fields_changed, own_key


def repository(state: State) -> str:
    if state.resource.namespaced:
        return f"vi/{state.namespace}/{state.name}"
    return f"cvi/{state.name}"


def apply_result(status: dict[str, Any], result: dict[str, Any], registry_url: str) -> None:
    # unpacked: what a disk made from the image needs, i.e. the disk's virtual size (a qcow2
    # file is smaller than the disk it describes); the layer's unpacked bytes otherwise
    unpacked = int(result.get("virtualSize") or result.get("unpackedSize") or 0)
    stored = int(result.get("storedSize") or 0)
    status["size"] = {"stored": quantity.format_bytes(stored) if stored % 1024 == 0 else str(stored),
                      "storedBytes": str(stored),
                      "unpacked": quantity.format_bytes(unpacked) if unpacked % 1024 == 0 else str(unpacked),
                      "unpackedBytes": str(unpacked)}
    status["format"] = result.get("format", "")
    status["cdrom"] = result.get("format") == "iso"
    status["progress"] = "100%"
    status.setdefault("target", {})["registryURL"] = registry_url


class ImageHandlers:
    def __init__(self, resource: Resource, importer: Importer, api: DvcrApi) -> None:
        self.resource = resource
        self.importer = importer
        self.api = api
        cvi = not resource.namespaced
        self.C = CVICondition if cvi else VICondition
        self.finalizer = FINALIZER_CVI if cvi else FINALIZER_VI

    def handlers(self) -> list[Any]:
        return [_Step("init", self.init), _Step("deletion", self.deletion), _Step("provision", self.provision)]

    def _set(self, state: State, type_: str, ok: bool, reason: str, message: str = "") -> None:
        conditions.set_condition(state.status, type_, ok, reason, message, generation=state.generation)

    def init(self, state: State) -> None:
        conditions.init_unknown(state.status, [self.C.Type.DATASOURCE_READY, self.C.Type.READY],
                                generation=state.generation)
        if not state.deleting:
            state.add_finalizer(self.finalizer)
        if not state.status.get("phase"):
            state.status["phase"] = ImagePhase.PENDING

    def deletion(self, state: State) -> None:
        if not state.deleting:
            return
        state.status["phase"] = ImagePhase.TERMINATING
        state.stop = True
        self.importer.forget((state.resource.plural, state.namespace, state.name))
        try:
            self.api.delete_tag(repository(state))
            self.api.collect_garbage(grace_seconds=None if self._pushing(state) else 0)
        except DvcrError as exc:
            self._set(state, self.C.Type.READY, False, self.C.ReadyReason.PROVISIONING_FAILED,
                      f"removing the image from DVCR failed: {exc}; retrying")
            state.requeue(state.ctx.runtime.requeue_waiting)
            return
        state.remove_finalizer(self.finalizer)

    def _pushing(self, state: State) -> bool:
        """Whether anything may be pushing to DVCR now: an import, or an upload being received.
        Then GC keeps young blobs (its grace period); otherwise the deleted image goes at once."""
        if self.importer.busy():
            return True
        return any(o["metadata"]["uid"] != state.uid
                   for res in (VIRTUAL_IMAGES, CLUSTER_VIRTUAL_IMAGES)
                   for phase in (ImagePhase.PROVISIONING, ImagePhase.WAIT_FOR_USER_UPLOAD)
                   for o in state.lookup(indexes.images_by_phase(res), phase))

    def provision(self, state: State) -> None:
        status = state.status
        if status.get("phase") == ImagePhase.READY and status.get("observedGeneration") == state.generation:
            return
        if status.get("phase") == ImagePhase.FAILED and status.get("observedGeneration") == state.generation:
            return
        registry_url = f"{state.ctx.settings.dvcr_address}/{repository(state)}:latest"
        outcome: Outcome = advance(state, self.importer, self.api, repository(state))
        status["observedGeneration"] = state.generation
        if outcome.state == "blocked":
            status["phase"] = ImagePhase.PENDING
            self._set(state, self.C.Type.DATASOURCE_READY, False, outcome.reason, outcome.message)
            self._set(state, self.C.Type.READY, False, self.C.ReadyReason.PROVISIONING_NOT_STARTED, outcome.message)
            state.requeue(state.ctx.runtime.requeue_waiting)
            return
        self._set(state, self.C.Type.DATASOURCE_READY, True, self.C.DatasourceReadyReason.DATASOURCE_READY)
        if outcome.upload_url:
            status["imageUploadURLs"] = {"external": outcome.upload_url, "inCluster": outcome.upload_url}
            status["uploadCommand"] = f"curl -T <image file> '{outcome.upload_url}'"
        if outcome.state == "upload":
            status["phase"] = ImagePhase.WAIT_FOR_USER_UPLOAD
            self._set(state, self.C.Type.READY, False, self.C.ReadyReason.WAIT_FOR_USER_UPLOAD, outcome.message)
            state.requeue(state.ctx.runtime.requeue_progress)
        elif outcome.state == "running":
            status["phase"] = ImagePhase.PROVISIONING
            apply_progress(status, outcome.progress)
            self._set(state, self.C.Type.READY, False, self.C.ReadyReason.PROVISIONING, outcome.message)
            state.requeue(state.ctx.runtime.requeue_progress)
        elif outcome.state == "done":
            status["phase"] = ImagePhase.READY
            apply_result(status, outcome.result, registry_url)
            self._set(state, self.C.Type.READY, True, self.C.ReadyReason.READY, "")
            state.ctx.recorder.record(state.changed, type="Normal", reason="ImageReady",
                                      message=f"imported into DVCR as {registry_url}")
        else:
            status["phase"] = ImagePhase.FAILED
            self._set(state, self.C.Type.READY, False, self.C.ReadyReason.PROVISIONING_FAILED, outcome.message)
            state.ctx.recorder.record(state.changed, type="Warning", reason="ImportFailed", message=outcome.message)


class _Step:
    def __init__(self, name: str, fn: Any) -> None:
        self.name, self.fn = name, fn

    def handle(self, state: State) -> None:
        self.fn(state)


PHASE_EVENTS = PhaseEvents(warning=frozenset({ImagePhase.FAILED.value, ImagePhase.IMAGE_LOST.value,
                                             ImagePhase.PVC_LOST.value}))


phase_changed = fields_changed(("status", "phase"))


def build_for(resource: Resource) -> Any:
    def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
        api = DvcrApi(ctx.settings)
        importer = Importer(ctx.settings, on_change=lambda key: ctx.enqueue(resource, (key[1], key[2])))
        steps = ImageHandlers(resource, importer, api)
        reconciler = Reconciler(ctx, resource, steps.handlers(), failure_condition=VICondition.Type.READY,
                                after=[PHASE_EVENTS])

        def made_of(kind: str) -> Any:
            """The images made from a disk or a snapshot (the key ignores the namespace: a few extra looks)."""
            return lambda obj: indexes.keys(ctx, indexes.images_by_source(resource), f"{kind}/{obj['metadata']['name']}")

        def dependents(obj: dict[str, Any]) -> list[tuple[str, str]]:
            return indexes.keys(ctx, indexes.images_by_source(resource), f"{obj.get('kind')}/{obj['metadata']['name']}")

        return reconciler, [Watch(resource, lambda o: [own_key(o)]), Watch(VIRTUAL_IMAGES, dependents),
                            Watch(CLUSTER_VIRTUAL_IMAGES, dependents),
                            Watch(VIRTUAL_DISKS, made_of("VirtualDisk"), relevant=phase_changed),
                            Watch(VIRTUAL_DISK_SNAPSHOTS, made_of("VirtualDiskSnapshot"), relevant=phase_changed)]
    return build
