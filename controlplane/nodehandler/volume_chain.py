"""qcow2 backing chains between volume files: snapshots and restores as overlays, not copies.

Where it sits: `volumes.py` calls it for a volume whose source is another volume of this node
and for the deletion of a volume other files are built on. No data is copied on the way in:

- `freeze(disk, snapshot)`: a snapshot of a disk no running domain reads. The disk's current
  file becomes the snapshot's file (renamed: read-only from then on) and the disk gets a new,
  empty qcow2 overlay at its own path with the snapshot's file as backing. Three steps, each
  crash-safe: the overlay is made complete at `.<disk>.overlay` first (through a partial file),
  then the disk's file is renamed to the snapshot's path, then the overlay to the disk's path.
  `recover` (run at start-up and before a volume is reconciled, under the chain lock) finishes
  or undoes what a crash left: an `.overlay` next to a disk file that still exists is dropped
  (the snapshot is made again), one whose disk file is gone is renamed into place.
- `overlay(base, target)`: a volume made from a snapshot (VMOP Restore of a disk made again, a
  VirtualDisk from a VirtualDiskSnapshot): a new empty overlay on the snapshot's file.
- `revert(disk, snapshot)`: a VMOP Restore of a disk that still exists: a new empty overlay on
  the snapshot's file replaces the disk's file, at the disk's path. Made complete at the same
  `.<disk>.overlay` as `freeze`'s first, then renamed over the disk's file in one step; a crash
  before that rename leaves the disk as it was (`recover` drops the overlay, the revert is asked
  again), after it the revert is done. Files built on the disk's file (none, as volumes are made
  here) would first be made independent of it (`release`).
- `release(path)`: before the file of a deleted volume goes, the files built directly on it
  (its *dependents*, found by reading every volume file's qcow2 header: `dependents`) are made
  independent of it: all but one are rebased (`qemu-img rebase -b <its backing>`, which copies
  in the data they read from it), the last is committed into it (`qemu-img commit`: its own,
  usually small, changes) and the file renamed to that dependent's path. Every step keeps each
  dependent's content the same at every instant, so a crash in between is harmless; the caller
  retries. A file QEMU holds open and locked (read by a running domain, `readers`) is never
  touched by `qemu-img`: first `pull` makes each such domain stop reading it, live.
- `pull(dom, dev, below)`: a running domain's disk copies in, through QEMU (a block-stream job,
  libvirt's blockRebase), every cluster it reads from the layers above `below`, and QEMU then
  writes `below` as its backing file: the guest runs on, and the file being deleted is no longer
  in its chain; a pause of the guest then flushes QEMU's metadata cache, so that the header and
  the copied clusters' table entries are on disk together before anything is deleted. Should the
  job fail (e.g. the domain is migrating, or paused), the delete waits as before.

A file is only deleted when no other file's header names it (`dependents` is empty). Reading a
chain whole (export into DVCR, a clone's `qemu-img convert`, a live migration's NBD mirror)
flattens it; `qemu-img resize` and libvirt's block resize work on an overlay as on any file.
The snapshot of a disk a running domain uses is not made here: it stays a copy (libvirt backup,
`volume_copy.copy_in_use`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import libvirt

from controlplane.common.durable import fsync_dir
from controlplane.nodehandler import qcow2_header
from controlplane.nodehandler.chain_lock import ChainLock
from controlplane.nodehandler.job_wait import wait_for_job
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.storage import VolumeError, capacity, create_qcow2, run_tool

log = logging.getLogger(__name__)

LOCK = ChainLock()
"""Around every change of a chain on this node (volume workers run in parallel): additions
(`freeze`, `overlay`) hold it for their own path (`LOCK.adding`) and run at once; a delete's
`release` and `recover` hold it alone (`with LOCK:`), so a restore never reads a snapshot file
that a delete is renaming."""


def overlay_path(disk: Path) -> Path:
    """Where `freeze` keeps the disk's new overlay between its steps."""
    return disk.with_name(f".{disk.name}.overlay")


def backing(path: Path) -> Path | None:
    """The backing file named in the qcow2 header of `path` (absolute), or None."""
    header = qcow2_header.read(path)
    return header.backing if header is not None else None


def chain(path: Path) -> list[Path]:
    """`path` and every file under it, top first (stops at a loop or a missing file)."""
    out = [path]
    while (below := backing(out[-1])) is not None and below not in out and len(out) < 256:
        out.append(below)
    return out


def volume_files(root: Path) -> list[Path]:
    """Every complete volume file under the volumes directory (not partials or pending overlays)."""
    return [p for p in root.glob("*/*.qcow2") if not p.name.startswith(".")] if root.is_dir() else []


def dependents(path: Path, root: Path) -> list[Path]:
    """The volume files whose backing file is `path` (our index: their qcow2 headers)."""
    path = path.absolute()
    return sorted(p for p in volume_files(root.absolute()) if p != path and backing(p) == path)


def readers(path: Path, attached: Iterable[str]) -> list[str]:
    """Those of the `attached` top files (of running domains) whose chain reads `path`."""
    return [top for top in attached if path.absolute() in chain(Path(top).absolute())]


def _create_overlay(base: Path, target: Path, size: int) -> None:
    """A complete, empty overlay of `base` (which may not be at that path yet) at `target`."""
    partial = Layout.partial(target)
    partial.unlink(missing_ok=True)
    try:
        create_qcow2(partial, size, base, f"creating an overlay of {base.name}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def overlay(base: Path, target: Path, size: int) -> None:
    """`target`: a new empty qcow2 overlay on `base`, at least `size` bytes, nothing copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.adding(target):
        if not base.is_file():
            raise VolumeError(f"{base.name} is gone: cannot make {target.name} on it")
        _create_overlay(base, target, max(size, capacity(base)))


def freeze(disk: Path, snapshot: Path) -> None:
    """`snapshot`: the disk's current file, renamed; `disk`: a new empty overlay on it (see the module doc)."""
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    pending = overlay_path(disk)
    with LOCK.adding(disk):
        _create_overlay(snapshot, pending, capacity(disk))
        os.replace(disk, snapshot)  # a crash from here on: recover() renames the overlay into place
        os.replace(pending, disk)
        fsync_dir(disk.parent)


def revert(disk: Path, snapshot: Path, root: Path, *, allowed: Callable[[], None] = lambda: None) -> list[str]:
    """`disk`: a new empty overlay on `snapshot`, its old file gone (see the module doc); returns
    what was done besides, for the log. `allowed` raises when the disk must stay as it is (a
    running domain has it): it is called once the new overlay is made, before anything changes,
    so that a slow check (libvirt's) runs while the overlay is written."""
    if dependents(disk, root):  # a reshape: alone
        with LOCK:
            return _revert(disk, snapshot, release=lambda: release(disk, root), allowed=allowed)
    with LOCK.adding(disk):  # no addition makes files on a disk's own file: none appear meanwhile
        return _revert(disk, snapshot, release=list, allowed=allowed)


def _revert(disk: Path, snapshot: Path, release: Callable[[], list[str]], allowed: Callable[[], None]) -> list[str]:
    if not snapshot.is_file():
        raise VolumeError(f"{snapshot.name} is gone: cannot put {disk.name} back to it")
    pending = overlay_path(disk)
    _create_overlay(snapshot, pending, capacity(snapshot))
    try:
        allowed()
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    done = release()
    os.replace(pending, disk)  # the old file (and its changes since the snapshot) goes with this
    fsync_dir(disk.parent)
    return done


def recover(root: Path) -> list[str]:
    """Finish or undo every `freeze` or `revert` a crash interrupted; returns what was done, for
    the log."""
    done = []
    with LOCK:
        for pending in root.glob("*/.*.qcow2.overlay") if root.is_dir() else ():
            disk = pending.with_name(pending.name[1:-len(".overlay")])
            if disk.exists():
                pending.unlink(missing_ok=True)
                done.append(f"{disk.name}: unfinished snapshot or revert undone")
            elif (base := backing(pending)) is not None and base.is_file():
                os.replace(pending, disk)
                done.append(f"{disk.name}: snapshot or revert onto {base.name} finished")
            else:
                done.append(f"{pending.name}: left alone (its backing file is missing)")
    return done


def release(path: Path, root: Path) -> list[str]:
    """Make every dependent of `path` independent of it (see the module doc); `path` is gone after
    (renamed to the last dependent's path) unless it had none. Returns what was done."""
    done = []
    with LOCK:
        deps = dependents(path, root)
        below = backing(path)
        for dep in deps[:-1]:
            run_tool(["qemu-img", "rebase", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(below) if below else "",
                  str(dep)], f"rebasing {dep.name} off {path.name}")
            done.append(f"{dep.name} rebased onto {below.name if below else 'nothing'} (data copied in)")
        if deps:
            last = deps[-1]
            run_tool(["qemu-img", "commit", "-q", "-d", "-f", "qcow2", str(last)], f"committing {last.name} into {path.name}")
            os.replace(path, last)
            fsync_dir(last.parent)
            done.append(f"{last.name} committed into {path.name}, which took its place")
    return done


def pull(dom: libvirt.virDomain, dev: str, below: Path | None, *, timeout: float = 3600.0,
         poll: float = 0.1) -> None:
    """Stream into the running domain's disk `dev` what it reads above `below` (None: all of its
    chain), and wait for the job to end; raises VolumeError (the job aborted) past `timeout`."""
    if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:  # the flush below pauses it: only a running guest
        raise VolumeError(f"pulling the data of {dev} into its top file: the domain is not running")
    dom.blockRebase(dev, str(below) if below is not None else None, 0, 0)
    wait_for_job(lambda: bool(dom.blockJobInfo(dev, 0)), lambda: dom.blockJobAbort(dev, 0), timeout=timeout,
                 poll=poll, what=f"pulling the data of {dev} into its top file")
    # QEMU wrote the new backing file into the header at the job's end, while the L2 entries of
    # the clusters it copied may still sit in its cache: a host crash now would leave the disk
    # reading zeros there. A pause flushes every disk of the domain (QEMU's vm_stop); the guest
    # stops for that flush only.
    dom.suspend()
    _resume(dom, every=poll)


RESUME_ATTEMPTS = 5


def _resume(dom: libvirt.virDomain, *, every: float) -> None:
    """Resume the guest paused for the flush. A refused resume (libvirt busy with another job of
    the domain, say) is tried again, so one failed call does not leave the guest paused; a domain
    no longer paused (resumed meanwhile, or gone) needs nothing more."""
    for attempt in range(1, RESUME_ATTEMPTS + 1):
        try:
            dom.resume()
            return
        except libvirt.libvirtError as exc:
            if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
                return
            if attempt == RESUME_ATTEMPTS:
                raise VolumeError(f"resuming the guest after the flush: {exc} ({attempt} attempts): it stays "
                                  "paused; `virsh resume` it") from exc
            log.warning("resuming the guest after the flush failed (%s); trying again", exc)
            time.sleep(max(every, 0.05) * attempt)
