"""The volume reconciler: one InternalVirtualDiskVolume of this node <-> one qcow2 file.

One cycle (`reconcile(key)`):
1. ignore other nodes' volumes;
2. being deleted: wait while a running domain of this node uses the file; then delete the file
   and drop our finalizer;
3. hold our finalizer before creating anything (so a file is never leaked);
4. no file yet: create it — empty, or a full copy of its source image pulled into the node
   image cache (progress shown in `status.progress`);
5. `spec.size` larger than the file: grow it — through libvirt's block resize when a running
   domain has it attached (the guest sees the new size at once), else with `qemu-img resize`.
   A smaller size is refused with a message (volumes only grow);
6. write status: phase, path, capacity, progress, a Ready condition.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from controlplane.api.internal import VOLUME_FINALIZER, VolumePhase
from controlplane.common.kube.client import KubeError
from controlplane.common.kube.controller import Result, TemporaryError
from controlplane.common.kube.informer import Key
from controlplane.nodehandler import storage
from controlplane.nodehandler.conditions import set_condition
from controlplane.nodehandler.context import VOLUMES, NodeContext, now
from controlplane.nodehandler.domainxml import disk_targets
from controlplane.nodehandler.images import ImageError
from controlplane.nodehandler.instancespec import SpecError, quantity_bytes
from controlplane.nodehandler.lifecycle import ts

log = logging.getLogger(__name__)

IN_USE_RETRY = 2.0
FAILED_RETRY = 15.0
PROGRESS_EVERY = 1.0


def _human(size: int) -> str:
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


class VolumeReconciler:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    def users(self, path: str) -> list[tuple[str, str]]:
        """(instance uid, "ns/name") of running domains of this node with `path` attached."""
        out = []
        for uid, meta in self.ctx.domains.owned().items():
            st = self.ctx.domains.status(uid)
            if st is not None and st.active and path in disk_targets(st.xml):
                out.append((uid, f"{meta.get('namespace')}/{meta.get('name')}"))
        return out

    def reconcile(self, key: Key) -> Result | None:
        ctx = self.ctx
        cached = ctx.volumes.get(*key)
        if cached is None or not ctx.mine(cached):
            return None
        obj = copy.deepcopy(cached)
        meta = obj["metadata"]
        path = ctx.layout.volume(meta["namespace"], meta["name"], meta["uid"])
        if meta.get("deletionTimestamp"):
            users = self.users(str(path))
            if users:
                self._status(obj, VolumePhase.TERMINATING, path, f"in use by {', '.join(u for _, u in users)}: "
                             "deleted once it is detached or its VM stopped", ready=False, reason="InUse")
                return Result(requeue_after=IN_USE_RETRY)
            storage.delete(path)
            ctx.remove_finalizer(VOLUMES, obj, VOLUME_FINALIZER)
            log.info("volume %s/%s: file %s deleted", meta["namespace"], meta["name"], path)
            return None
        obj = ctx.add_finalizer(VOLUMES, obj, VOLUME_FINALIZER)
        spec = obj.get("spec") or {}
        try:
            size = quantity_bytes(spec.get("size"), "spec.size")
        except SpecError as exc:
            self._status(obj, VolumePhase.FAILED, path, str(exc), ready=False, reason="InvalidSpec")
            return None
        if not path.exists():
            try:
                obj = self._provision(obj, path, size)
            except (ImageError, storage.VolumeError, OSError) as exc:
                msg = f"provisioning failed: {exc}"
                ctx.events.record(obj, type="Warning", reason="ProvisioningFailed", message=msg[:1000])
                self._status(obj, VolumePhase.FAILED, path, msg, ready=False, reason="ProvisioningFailed")
                raise TemporaryError(msg, delay=FAILED_RETRY) from exc
        cap = storage.capacity(path)
        message = ""
        if size > cap:
            obj = self._status(obj, VolumePhase.RESIZING, path, f"growing from {_human(cap)} to {_human(size)}",
                               ready=True, reason="Resizing", capacity=cap)
            users = self.users(str(path))
            if users:
                ctx.domains.block_resize(users[0][0], str(path), size)
                how = f"online, attached to {users[0][1]}"
            else:
                storage.resize_offline(path, size)
                how = "offline"
            cap = storage.capacity(path)
            ctx.events.record(obj, type="Normal", reason="Resized", message=f"grown to {_human(cap)} ({how})")
        elif size < cap:
            message = (f"spec.size {_human(size)} is smaller than the volume ({_human(cap)}): volumes only grow; "
                       f"keeping {_human(cap)}")
        self._status(obj, VolumePhase.READY, path, message, ready=True, reason="Ready", capacity=cap,
                     progress="100%")
        return None

    def _provision(self, obj: dict[str, Any], path: Any, size: int) -> dict[str, Any]:
        ctx = self.ctx
        source = ((obj.get("spec") or {}).get("source") or {}).get("image")
        what = f"copying image {source['ref']}" if source else "creating an empty volume"
        if (obj.get("status") or {}).get("phase") != str(VolumePhase.FAILED):
            # a retry after a failure keeps Failed until it succeeds: flipping to Provisioning and
            # back would wake this reconciler with its own writes and defeat the retry backoff
            obj = self._status(obj, VolumePhase.PROVISIONING, path, what, ready=False, reason="Provisioning",
                               progress="0%")
        if not source:
            storage.create_empty(path, size)
        else:
            last = [0.0]

            def progress(stage: str, weight: float, offset: float) -> Any:
                def report(done: int, total: int) -> None:
                    nonlocal obj
                    if time.monotonic() - last[0] < PROGRESS_EVERY or not total:
                        return
                    last[0] = time.monotonic()
                    pct = f"{int(offset + weight * done / total)}%"
                    try:
                        obj = self._status(obj, VolumePhase.PROVISIONING, path, f"{what}: {stage}", ready=False,
                                           reason="Provisioning", progress=pct)
                    except KubeError as exc:
                        log.debug("progress of %s not written: %s", path, exc)
                return report

            image = ctx.images.ensure(source["ref"], source.get("digest"), progress=progress("pulling", 50, 0))
            storage.create_from_image(path, image, size, progress=progress("copying", 50, 50))
        ctx.events.record(obj, type="Normal", reason="Provisioned", message=f"{path.name}: {what} done")
        return obj

    def _status(self, obj: dict[str, Any], phase: VolumePhase, path: Any, message: str, *, ready: bool, reason: str,
                capacity: int | None = None, progress: str | None = None) -> dict[str, Any]:
        old = obj.get("status") or {}
        stamp = ts(now())
        new = {**old, "phase": str(phase), "path": str(path),
               "observedGeneration": int(obj["metadata"].get("generation") or 0)}
        if capacity is not None:
            new.update(capacity=_human(capacity), capacityBytes=capacity)
        if progress is not None:
            new["progress"] = progress
        if message:
            new["message"] = message
        else:
            new.pop("message", None)
        new["conditions"] = set_condition(list(old.get("conditions") or []), "Ready", ready, reason, message,
                                          now=stamp)
        if new == old:
            return obj
        try:
            return self.ctx.kube.replace(VOLUMES, {**obj, "status": new}, subresource="status")
        except KubeError as exc:
            if exc.not_found:
                return obj
            raise
