"""The volume reconciler: one InternalVirtualDiskVolume of this node <-> one qcow2 file.

One cycle (`reconcile(key)`):
1. ignore other nodes' volumes;
2. being deleted: wait while a running domain of this node has the file attached; a running
   domain that reads it through a backing chain stops reading it, live (`volume_chain.pull`;
   should that fail, wait for it too); then make the files built on it independent
   (`volume_chain.release`), delete it and drop our finalizer;
3. hold our finalizer before creating anything (so a file is never leaked);
4. no file yet: create it — empty, a full copy of its source image pulled into the node
   image cache (progress shown in `status.progress`), or from another volume of this node:
   a snapshot of a disk no running domain uses takes the disk's file and leaves the disk an
   overlay on it, a volume from a snapshot is an overlay on the snapshot's file
   (`volume_chain`: qcow2 backing chains, nothing copied); a snapshot of a disk a running
   domain uses is a copy (`volume_copy`: a libvirt backup; `status.consistent` says whether
   the guest's filesystems were frozen for it); or the source's file itself, moved (`take`: a
   VMOP Clone's temporary snapshot no other file is built on; the source is marked
   `status.takenBy` and left without a file), else flattened by `qemu-img convert`;
5. `spec.revert` not yet done nor refused (`status.reverted`, `status.revertRefused`): the file
   is replaced by a new empty overlay on the named snapshot volume's file (`volume_chain.revert`:
   a VMOP Restore of a disk that still exists; nothing copied); refused for good when a running
   domain has the file attached (the restore stopped the VM before asking);
6. `spec.size` larger than the file: grow it — through libvirt's block resize when a running
   domain has it attached (the guest sees the new size at once), else with `qemu-img resize`.
   A smaller size is refused with a message (volumes only grow);
7. write status: phase, path, capacity, progress, a Ready condition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from controlplane.api.condition_builder import apply as set_condition
from controlplane.api.internal import VOLUME_FINALIZER, VolumeCondition, VolumePhase, VolumeReason
from controlplane.api.volume import SpecError, VolumeSpec, parse_volume, revert_refused
from controlplane.api.volume import reverted as reverted_id
from controlplane.common.jsoncopy import json_copy
from controlplane.common.kube.client import KubeError
from controlplane.common.kube.controller import Result
from controlplane.common.kube.errors import TemporaryError
from controlplane.common.kube.informer import Key
from controlplane.nodehandler import storage, volume_chain
from controlplane.nodehandler.context import VOLUMES, NodeContext, now
from controlplane.nodehandler.domainxml import disk_targets
from controlplane.nodehandler.images import ImageError
from controlplane.nodehandler.lifecycle import ts
from controlplane.nodehandler.volume_copy import InconsistentCopy, copy_in_use, copy_offline, take

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyPlan:
    instant: bool
    """Nothing is copied: the file is made in milliseconds."""
    run: Callable[[], tuple[bool, str]]
    """Makes the file: (consistent, how)."""


class SourceNotReady(Exception):
    """The volume to copy from is not (yet) a Ready volume of this node."""


def _human(size: int) -> str:
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


RunningDisks = list[tuple[str, dict[str, str], dict[str, str]]]
"""(instance uid, its domain's metadata, {source file: target dev}) of each running domain."""


_CHECKS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="volume-users")
"""Where a revert asks libvirt which running domains have the disk, while it writes the overlay."""


class _InUse(Exception):
    """A running domain has the disk a revert was to replace."""


class _NotASnapshot(Exception):
    """A revert names a volume that is not a snapshot's."""


class VolumeReconciler:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        for step in volume_chain.recover(ctx.layout.volumes):  # what a crash interrupted (before any reconcile)
            log.warning("volumes: %s", step)

    def _running_disks(self) -> RunningDisks:
        """The running domains of this node and their disks: read from libvirt once per cycle, for
        `users`, `_stop_reading` and `readers`."""
        return [(uid, meta, disk_targets(xml)) for uid, (meta, xml) in self.ctx.domains.active_owned().items()]

    def users(self, path: str, running: RunningDisks | None = None) -> list[tuple[str, str]]:
        """(instance uid, "ns/name") of running domains of this node with `path` attached."""
        return [(uid, f"{meta.get('namespace')}/{meta.get('name')}")
                for uid, meta, disks in (self._running_disks() if running is None else running) if path in disks]

    @staticmethod
    def readers(path: Path, running: RunningDisks) -> list[str]:
        """Top files of running domains of this node whose backing chain reads `path`."""
        tops = [p for _, _, disks in running for p in disks if p != str(path)]
        return [Path(p).name for p in volume_chain.readers(path, tops)]

    def _stop_reading(self, path: Path, running: RunningDisks) -> list[str]:
        """Running domains whose disks read `path` through their chain stop reading it, live
        (`volume_chain.pull` down to its backing file); one that cannot stays a reader."""
        below, done = volume_chain.backing(path), []
        for uid, _, disks in running:
            for top, dev in disks.items():
                if top == str(path) or not volume_chain.readers(path, [top]):
                    continue
                dom = self.ctx.domains.lookup(uid)
                if dom is None:
                    continue
                try:
                    volume_chain.pull(dom, dev, below)
                except (libvirt.libvirtError, storage.VolumeError) as exc:
                    log.warning("pulling %s's data into %s of a running domain failed (%s): the delete waits for it",
                                path.name, Path(top).name, exc)
                    continue
                done.append(f"{Path(top).name} of a running domain no longer reads {path.name}: its data pulled in "
                            f"live, its backing file now {below.name if below else 'none'}")
        return done

    def reconcile(self, key: Key) -> Result | None:
        ctx = self.ctx
        cached = ctx.volumes.get(*key)
        if cached is None or not ctx.mine(cached):
            return None
        obj = json_copy(cached)
        meta = obj["metadata"]
        path = ctx.layout.volume(meta["namespace"], meta["name"], meta["uid"])
        if meta.get("deletionTimestamp"):
            with volume_chain.LOCK:
                running = self._running_disks()
                users = self.users(str(path), running)
                if not users:
                    for step in self._stop_reading(path, running):
                        log.info("volume %s/%s: %s", meta["namespace"], meta["name"], step)
                readers = self.readers(path, running)  # the pulls changed the chains' headers, not the tops
                if users or readers:
                    who = (f"in use by {', '.join(u for _, u in users)}" if users else
                           f"the backing file of {', '.join(readers)}, read by a running VM")
                    self._status(obj, VolumePhase.TERMINATING, path, f"{who}: deleted once it is detached or its VM "
                                 "stopped", ready=False, reason=VolumeReason.IN_USE)
                    return Result(requeue_after=ctx.runtime.volume_in_use_retry)
                for step in volume_chain.release(path, ctx.layout.volumes):
                    log.info("volume %s/%s deleted: %s", meta["namespace"], meta["name"], step)
                storage.delete(path)
            ctx.remove_finalizer(VOLUMES, obj, VOLUME_FINALIZER)
            log.info("volume %s/%s: file %s deleted", meta["namespace"], meta["name"], path)
            return None
        obj = ctx.add_finalizer(VOLUMES, obj, VOLUME_FINALIZER)
        try:
            spec = parse_volume(obj)
        except SpecError as exc:
            self._status(obj, VolumePhase.FAILED, path, str(exc), ready=False, reason=VolumeReason.INVALID_SPEC)
            return None
        size = spec.size_bytes
        if (obj.get("status") or {}).get("takenBy"):
            return None  # a temporary snapshot's: another volume has (or is taking) its file; it is deleted soon
        if volume_chain.overlay_path(path).exists():
            for step in volume_chain.recover(ctx.layout.volumes):
                log.warning("volume %s/%s: %s", meta["namespace"], meta["name"], step)
        if not path.exists():
            try:
                obj = self._provision(obj, spec, path)
            except SourceNotReady as exc:
                self._status(obj, VolumePhase.PENDING, path, str(exc), ready=False, reason=VolumeReason.SOURCE_NOT_READY)
                return Result(requeue_after=ctx.runtime.volume_in_use_retry)
            except InconsistentCopy as exc:
                ctx.events.record(obj, type="Warning", reason=str(VolumeReason.POTENTIALLY_INCONSISTENT),
                                  message=str(exc)[:1000])
                self._status(obj, VolumePhase.FAILED, path, str(exc), ready=False,
                             reason=VolumeReason.POTENTIALLY_INCONSISTENT)
                return None
            except (ImageError, storage.VolumeError, OSError) as exc:
                msg = f"provisioning failed: {exc}"
                ctx.events.record(obj, type="Warning", reason="ProvisioningFailed", message=msg[:1000])
                self._status(obj, VolumePhase.FAILED, path, msg, ready=False, reason=VolumeReason.PROVISIONING_FAILED)
                raise TemporaryError(msg, delay=ctx.runtime.volume_failed_retry) from exc
        reverted = None
        if spec.revert is not None and spec.revert.id not in (reverted_id(obj), revert_refused(obj)):
            waiting = self._revert(obj, spec, path)
            if waiting is not None:
                return waiting
            reverted = spec.revert.id
        cap = storage.capacity(path)
        message = ""
        if size > cap:
            obj = self._status(obj, VolumePhase.RESIZING, path, f"growing from {_human(cap)} to {_human(size)}",
                               ready=True, reason=VolumeReason.RESIZING, capacity=cap)
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
        obj = self._status(obj, VolumePhase.READY, path, message, ready=True, reason=VolumeReason.READY, capacity=cap,
                           progress="100%", reverted=reverted)
        if spec.revert is not None and reverted is not None:
            ctx.events.record(obj, type="Normal", reason="Reverted", message=f"{path.name}: put back to the content "
                              f"of volume {spec.revert.volume} (a new overlay on its file: nothing copied)")
        return None

    def _revert(self, obj: dict[str, Any], spec: VolumeSpec, path: Path) -> Result | None:
        """`spec.revert` done (None), or the result of this cycle when it is not (waiting, or refused:
        the volume keeps its content and its status says why)."""
        assert spec.revert is not None
        name, ns, revert_id = spec.revert.volume, obj["metadata"]["namespace"], spec.revert.id
        asked = _CHECKS.submit(self.users, str(path))  # libvirt answers while the overlay is written

        def allowed() -> None:
            if asked.result():
                raise _InUse
        try:
            src_path, src_is_snapshot = self._source(name, ns)
            if not src_is_snapshot:
                raise _NotASnapshot
            steps = volume_chain.revert(path, src_path, self.ctx.layout.volumes, allowed=allowed)
        except Exception as exc:
            if users := asked.result():  # a domain has the disk: that is the answer, whatever else stopped it
                # the restore stopped the VM before asking: someone started it since, and it keeps its data
                self._status(obj, VolumePhase.READY, path, f"not put back to volume {name}: in use by "
                             f"{', '.join(u for _, u in users)} when asked; stop the VM and restore again",
                             ready=True, reason=VolumeReason.IN_USE, revert_refused=revert_id)
                return Result()
            if isinstance(exc, SourceNotReady):
                self._status(obj, VolumePhase.READY, path, str(exc), ready=True, reason=VolumeReason.SOURCE_NOT_READY)
                return Result(requeue_after=self.ctx.runtime.volume_in_use_retry)
            if isinstance(exc, _NotASnapshot):
                self._status(obj, VolumePhase.READY, path, f"spec.revert.volume {name} is not a snapshot's volume: "
                             "nothing to put back", ready=True, reason=VolumeReason.INVALID_SPEC)
                return Result()  # refused: the volume keeps its content, until the spec changes
            raise
        for step in steps:
            log.info("volume %s/%s reverted: %s", ns, obj["metadata"]["name"], step)
        return None  # the event follows the status write, which the restore waits for

    def _provision(self, obj: dict[str, Any], spec: VolumeSpec, path: Any) -> dict[str, Any]:
        ctx = self.ctx
        size = spec.size_bytes
        source = self._source(spec.source_volume, obj["metadata"]["namespace"]) if spec.source_volume else None
        what = (f"copying image {spec.image_ref}" if spec.image_ref else
                f"taking a snapshot of volume {spec.source_volume}" if spec.source_volume and spec.snapshot else
                f"from volume {spec.source_volume}" if spec.source_volume else "creating an empty volume")
        plan = self._copy_plan(spec, source, path, obj) if source is not None else None
        # a volume made at once (empty, or a chain step from a volume of this node: no data
        # copied) goes straight to Ready: a Provisioning written and overwritten within
        # milliseconds would only cost writes, and wake every watcher of the volume twice more
        instant = not spec.image_ref and (plan is None or plan.instant)
        if not instant and (obj.get("status") or {}).get("phase") != str(VolumePhase.FAILED):
            # a retry after a failure keeps Failed until it succeeds: flipping to Provisioning and
            # back would wake this reconciler with its own writes and defeat the retry backoff
            obj = self._status(obj, VolumePhase.PROVISIONING, path, what, ready=False, reason=VolumeReason.PROVISIONING,
                               progress="0%")
        if plan is not None:
            consistent, how = plan.run()
            # carried by the Ready write, which follows at once (a copy's "100%" of its own would
            # be one more write on the way to Ready, overwritten a few milliseconds later)
            obj = {**obj, "status": {**(obj.get("status") or {}), "consistent": consistent}}
            what = f"from volume {spec.source_volume} ({how})"
        elif not spec.image_ref:
            storage.create_empty(path, size)
        else:
            last = [0.0]

            def progress(stage: str, weight: float, offset: float) -> Any:
                def report(done: int, total: int) -> None:
                    nonlocal obj
                    if time.monotonic() - last[0] < ctx.runtime.progress_every or not total:
                        return
                    last[0] = time.monotonic()
                    pct = f"{int(offset + weight * done / total)}%"
                    try:
                        obj = self._status(obj, VolumePhase.PROVISIONING, path, f"{what}: {stage}", ready=False,
                                           reason=VolumeReason.PROVISIONING, progress=pct)
                    except KubeError as exc:
                        log.debug("progress of %s not written: %s", path, exc)
                return report

            image = ctx.images.ensure(spec.image_ref, spec.image_digest, progress=progress("pulling", 50, 0))
            storage.create_from_image(path, image, size, progress=progress("copying", 50, 50))
        ctx.events.record(obj, type="Normal", reason="Provisioned", message=f"{path.name}: {what} done")
        return obj

    def _source(self, name: str, namespace: str) -> tuple[Path, bool]:
        """The file of the Ready volume `name` of this node to copy (or revert) from, and whether
        that volume is a snapshot (read-only: it can be a backing file); SourceNotReady otherwise."""
        source = self.ctx.volumes.get(namespace, name)
        if source is None or not self.ctx.mine(source):
            raise SourceNotReady(f"waiting for volume {name} of node {self.ctx.node}")
        src_meta = source["metadata"]
        src_path = self.ctx.layout.volume(namespace, src_meta["name"], src_meta["uid"])
        if (source.get("status") or {}).get("phase") != str(VolumePhase.READY) or not src_path.exists():
            raise SourceNotReady(f"waiting for volume {name} to be Ready")
        return src_path, parse_volume(source).snapshot

    def _copy_plan(self, spec: VolumeSpec, source: tuple[Path, bool], path: Path, obj: dict[str, Any]) -> CopyPlan:
        """How `path` is made from the source volume's file. Nothing is copied (instant) unless a
        running domain uses the source, or the source is a disk (not a snapshot) to clone."""
        src_path, src_is_snapshot = source
        users = self.users(str(src_path))
        dom = self.ctx.domains.lookup(users[0][0]) if users else None
        if dom is None and spec.snapshot:
            def freeze() -> tuple[bool, str]:
                volume_chain.freeze(src_path, path)
                return True, "its file became the snapshot's, and it writes to a new overlay on it: nothing copied"
            return CopyPlan(True, freeze)
        if dom is None and src_is_snapshot and not spec.take_source:
            def overlay() -> tuple[bool, str]:
                volume_chain.overlay(src_path, path, spec.size_bytes)
                return True, "an overlay on the snapshot's file: nothing copied"
            return CopyPlan(True, overlay)
        if dom is None and spec.take_source and not volume_chain.dependents(src_path, self.ctx.layout.volumes):
            def take_over() -> tuple[bool, str]:
                # marked first: a crash between the two leaves the source with its file and the
                # mark, and the retry takes it; never a source without file and without mark
                self.ctx.kube.patch(VOLUMES, spec.source_volume or "", {"status": {"takenBy": obj["metadata"]["name"]}},
                                    obj["metadata"]["namespace"], subresource="status")
                take(src_path, path, spec.size_bytes)
                return True, "taken over, not copied"
            return CopyPlan(True, take_over)
        if dom is None:  # (a source other files are built on is copied, flattened, not taken)
            def offline() -> tuple[bool, str]:
                copy_offline(src_path, path, spec.size_bytes)
                return True, "offline"
            return CopyPlan(False, offline)
        in_use = dom

        def live() -> tuple[bool, str]:
            done = copy_in_use(in_use, src_path, path, spec.size_bytes, require_consistency=spec.require_consistency)
            return done.consistent, f"{done.method}, in use by {users[0][1]}"
        return CopyPlan(False, live)

    def _status(self, obj: dict[str, Any], phase: VolumePhase, path: Any, message: str, *, ready: bool, reason: VolumeReason,
                capacity: int | None = None, progress: str | None = None,
                reverted: str | None = None,
                revert_refused: str | None = None) -> dict[str, Any]:
        old = obj.get("status") or {}
        stamp = ts(now())
        new = {**old, "phase": str(phase), "path": str(path),
               "observedGeneration": int(obj["metadata"].get("generation") or 0)}
        if capacity is not None:
            new.update(capacity=_human(capacity), capacityBytes=capacity)
        if progress is not None:
            new["progress"] = progress
        if reverted is not None:
            new["reverted"] = reverted
        if revert_refused is not None:
            new["revertRefused"] = revert_refused
        if message:
            new["message"] = message
        else:
            new.pop("message", None)
        new["conditions"] = set_condition(list(old.get("conditions") or []), VolumeCondition.READY, ready, reason, message,
                                          now=stamp)
        if new == old:
            return obj
        try:
            return self.ctx.kube.replace(VOLUMES, {**obj, "status": new}, subresource="status")
        except KubeError as exc:
            if exc.not_found:
                return obj
            raise
