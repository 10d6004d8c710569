"""A volume made from another volume of this node: the node's side of VirtualDiskSnapshot (a copy
of a disk's volume) and of a VirtualDisk made from a snapshot (a copy of the snapshot's volume).

Two ways, chosen by whether a running domain of this node has the source file attached:

- not in use: `qemu-img convert` to a standalone qcow2 (the source's allocated data only);
  or, when the spec says `take` (a VMOP Clone's temporary snapshot, deleted right after), the
  source's file itself renamed into place, no data copied;
- in use: the guest's filesystems are frozen through the qemu-guest-agent (libvirt
  `fsFreeze`), a libvirt push-mode backup of that one disk starts (QEMU copies the disk as it
  was at that instant, copy-before-write, into a new qcow2 file), the filesystems are thawed at
  once, and the copy finishes while the guest runs on. The freeze lasts only as long as
  starting the backup job, not the copy.

When the agent does not answer (no agent, or it refuses the freeze), a copy that asked for
consistency is refused with `InconsistentCopy` (the VirtualDiskSnapshot then reports DVP's
`PotentiallyInconsistent`); otherwise the copy is made unfrozen and reported as not consistent.
Every copy goes through a partial file renamed into place, like every other volume.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import libvirt

from controlplane.nodehandler.domainxml import disk_targets
from controlplane.nodehandler.job_wait import wait_for_job
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.storage import VolumeError, capacity, run_tool

log = logging.getLogger(__name__)


class InconsistentCopy(VolumeError):
    """A consistent copy was required, but the guest's filesystems could not be frozen."""


@dataclass(frozen=True)
class CopyResult:
    consistent: bool
    """True when no running guest had the disk, or its filesystems were frozen for the copy."""
    method: str
    """How the copy was made, for the event: "offline" or "backup of <dev> (frozen|unfrozen)"."""


def copy_offline(source: Path, target: Path, size: int) -> None:
    """`target`: a standalone qcow2 copy of the (unused) qcow2 `source`, at least `size` bytes."""
    partial = Layout.partial(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    try:
        run_tool(["qemu-img", "convert", "-q", "-W", "-f", "qcow2", "-O", "qcow2", str(source), str(partial)],
             f"copying {source.name} to {target.name}")
        _grow(partial, size)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def take(source: Path, target: Path, size: int) -> None:
    """`target`: the (unused) qcow2 `source` itself, grown to `size` and renamed into place (one
    rename: a crash leaves either the source or the target, never both or neither)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _grow(source, size)
    os.replace(source, target)


def copy_in_use(dom: libvirt.virDomain, source: Path, target: Path, size: int, *, require_consistency: bool,
                timeout: float = 3600.0, poll: float = 0.2) -> CopyResult:
    """Copy `source`, attached to the running `dom`, through a libvirt backup; see the module doc."""
    dev = disk_targets(dom.XMLDesc(0)).get(str(source))
    if not dev:
        raise VolumeError(f"{source.name} is not a disk of domain {dom.name()}: cannot back it up")
    frozen, why = _freeze(dom)
    if not frozen and require_consistency:
        raise InconsistentCopy(f"the guest's filesystems could not be frozen ({why}): a consistent copy of {dev} "
                               "needs a running qemu-guest-agent in the guest, or a stopped VM")
    partial = Layout.partial(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    try:
        try:
            dom.backupBegin(_backup_xml(dom, dev, partial), None, 0)
        finally:
            if frozen:
                _thaw(dom)
        _wait_backup(dom, timeout=timeout, poll=poll, what=f"backup of {dev} to {target.name}")
        _grow(partial, size)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return CopyResult(consistent=frozen, method=f"backup of {dev} ({'frozen' if frozen else 'unfrozen'})")


def _backup_xml(dom: libvirt.virDomain, dev: str, target: Path) -> str:
    """A push-mode backup of `dev` into `target` (qcow2); every other disk marked backup='no'."""
    others = [d for d in disk_targets(dom.XMLDesc(0)).values() if d != dev]
    disks = [f"<disk name={quoteattr(dev)} type='file'><target file={quoteattr(str(target))}/>"
             "<driver type='qcow2'/></disk>"]
    disks += [f"<disk name={quoteattr(d)} backup='no'/>" for d in others]
    return f"<domainbackup mode='push'><disks>{''.join(disks)}</disks></domainbackup>"


def _freeze(dom: libvirt.virDomain) -> tuple[bool, str]:
    try:
        count = dom.fsFreeze(None, 0)
    except libvirt.libvirtError as exc:
        return False, exc.get_error_message() or str(exc)
    return count >= 0, "" if count >= 0 else "no filesystem frozen"


def _thaw(dom: libvirt.virDomain) -> None:
    try:
        dom.fsThaw(None, 0)
    except libvirt.libvirtError as exc:
        log.warning("thawing the filesystems of %s failed: %s", dom.name(), exc)


def _wait_backup(dom: libvirt.virDomain, *, timeout: float, poll: float, what: str) -> None:
    """Until the backup job ends (`wait_for_job`); a job that failed raises VolumeError."""
    wait_for_job(lambda: dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE, dom.abortJob, timeout=timeout,
                 poll=poll, what=what)
    try:
        done = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except libvirt.libvirtError:
        return  # nothing kept: the job finished (a failed backup leaves its error there)
    if done.get("type") == libvirt.VIR_DOMAIN_JOB_FAILED:
        raise VolumeError(f"{what} failed: {done.get('errmsg') or 'libvirt reports the job failed'}")


def _grow(path: Path, size: int) -> None:
    if size > capacity(path):
        run_tool(["qemu-img", "resize", "-q", "-f", "qcow2", str(path), str(size)], f"resizing {path.name}")
