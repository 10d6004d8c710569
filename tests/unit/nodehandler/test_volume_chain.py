"""Snapshots and restores as qcow2 overlays (`volume_chain`), on real qcow2 files and qemu-img: a
snapshot takes the disk's file and leaves the disk an overlay (no copy), a crash between its steps
is finished or undone on recovery, a restore is an overlay on the snapshot's file, and deleting a
snapshot first makes every file built on it independent, keeping each one's content; the chain
index (headers) finds dependents and the running readers of a file through its chain."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import libvirt
import pytest

from controlplane.nodehandler import volume_chain as chain
from controlplane.nodehandler.storage import VolumeError

MI = 2**20


def _io(path: Path, op: str) -> str:
    done = subprocess.run(["qemu-io", "-f", "qcow2", "-c", op, str(path)], capture_output=True, text=True, check=True)
    return done.stdout


def _holds(path: Path, pattern: int, offset_mib: int = 0) -> bool:
    return "Pattern verification failed" not in _io(path, f"read -P {pattern:#x} {offset_mib}M 1M")


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "volumes" / "ns" / "disk.u1.qcow2"
    path.parent.mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(8 * MI)], check=True)
    _io(path, "write -P 0x5a 0 1M")
    return path


def test_a_snapshot_takes_the_disks_file_and_leaves_the_disk_an_overlay(disk: Path) -> None:
    snap = disk.with_name("snap.u2.qcow2")
    inode = disk.stat().st_ino
    chain.freeze(disk, snap)
    assert snap.stat().st_ino == inode  # renamed, not copied
    assert chain.backing(disk) == snap and chain.backing(snap) is None
    assert disk.stat().st_size < MI and _holds(disk, 0x5A)
    _io(disk, "write -P 0xcc 0 1M")
    assert _holds(snap, 0x5A) and _holds(disk, 0xCC)
    assert chain.dependents(snap, disk.parent.parent) == [disk]
    assert chain.readers(snap, [str(disk), "/elsewhere.qcow2"]) == [str(disk)]


@pytest.mark.parametrize("renamed,expected", [(False, "undone"), (True, "finished")],
                         ids=["crash-before-rename", "crash-between-renames"])
def test_recovery_finishes_or_undoes_an_interrupted_snapshot(disk: Path, renamed: bool, expected: str) -> None:
    snap = disk.with_name("snap.u2.qcow2")
    pending = chain.overlay_path(disk)
    chain._create_overlay(snap, pending, 8 * MI)
    if renamed:
        os.replace(disk, snap)
    done = chain.recover(disk.parent.parent)
    assert len(done) == 1 and expected in done[0]
    assert not pending.exists() and _holds(disk, 0x5A)
    assert chain.backing(disk) == (snap if renamed else None)
    assert snap.exists() == renamed


def test_deleting_a_snapshot_makes_its_dependents_independent_and_keeps_their_content(disk: Path) -> None:
    root = disk.parent.parent
    first, second = disk.with_name("s1.u2.qcow2"), disk.with_name("s2.u3.qcow2")
    chain.freeze(disk, first)
    _io(disk, "write -P 0x11 1M 1M")
    chain.freeze(disk, second)  # disk -> second -> first
    restored = disk.with_name("restored.u4.qcow2")
    chain.overlay(first, restored, 16 * MI)  # restored -> first, grown
    _io(restored, "write -P 0x22 2M 1M")
    _io(disk, "write -P 0xcc 0 1M")
    (disk.parent / f".{disk.name}.partial").write_bytes(b"")  # not a volume file: never a dependent
    assert chain.dependents(first, root) == [restored, second]

    done = chain.release(first, root)  # restored rebased (copied in), second committed into first
    assert len(done) == 2 and not first.exists()
    assert chain.backing(restored) is None and chain.backing(second) is None and chain.backing(disk) == second
    assert _holds(restored, 0x5A) and _holds(restored, 0x22, 2) and _holds(second, 0x5A) and _holds(second, 0x11, 1)
    assert _holds(disk, 0xCC) and _holds(disk, 0x11, 1)
    assert chain.dependents(second, root) == [disk] and chain.release(restored, root) == []


class _PullingDomain:
    """A running domain whose block-stream job reports itself `jobs` times, then ends."""

    def __init__(self, jobs: int, *, paused: bool = False, refused_resumes: int = 0) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.jobs = jobs
        self.running = 3 if paused else 1  # libvirt's VIR_DOMAIN_PAUSED / VIR_DOMAIN_RUNNING
        self.refused_resumes = refused_resumes

    def blockRebase(self, dev: str, base: str | None, bandwidth: int, flags: int) -> int:  # noqa: N802 - libvirt's
        self.calls.append(("rebase", dev, str(base), str(bandwidth), str(flags)))
        return 0

    def blockJobInfo(self, dev: str, flags: int) -> dict[str, int]:  # noqa: N802 - libvirt's
        self.jobs -= 1
        return {"type": 1, "cur": 1, "end": 2} if self.jobs >= 0 else {}

    def blockJobAbort(self, dev: str, flags: int) -> int:  # noqa: N802 - libvirt's
        self.calls.append(("abort", dev))
        return 0

    def state(self) -> tuple[int, int]:
        return (self.running, 0)

    def suspend(self) -> int:
        self.calls.append(("suspend",))
        self.running = 3
        return 0

    def resume(self) -> int:
        self.calls.append(("resume",))
        if self.refused_resumes:
            self.refused_resumes -= 1
            raise libvirt.libvirtError("Timed out during operation: cannot acquire state change lock")
        self.running = 1
        return 0


@pytest.mark.parametrize("below", [Path("/v/ns/base.qcow2"), None], ids=["onto-its-backing", "flatten"])
def test_a_running_reader_pulls_down_to_the_deleted_files_backing_and_waits_for_the_job(below: Path | None) -> None:
    dom = _PullingDomain(jobs=3)
    chain.pull(dom, "vdb", below, poll=0)
    assert dom.calls == [("rebase", "vdb", str(below) if below else "None", "0", "0"), ("suspend",), ("resume",)], \
        "the job, then a pause that flushes QEMU's metadata"
    assert dom.jobs < 0, "returned before the job ended"


def test_the_pull_is_asked_for_soon_after_it_begins_then_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("controlplane.nodehandler.job_wait.time.sleep", slept.append)
    dom = _PullingDomain(jobs=12)
    chain.pull(dom, "vdb", None, poll=0.1)
    assert dom.jobs == -1, "asked until the job is gone, and not after"
    assert slept[0] <= 0.01 and slept == sorted(slept) and max(slept) == 0.1


def test_a_paused_domain_is_not_pulled() -> None:
    dom = _PullingDomain(jobs=0, paused=True)
    with pytest.raises(VolumeError, match="not running"):
        chain.pull(dom, "vdb", None, poll=0)
    assert dom.calls == []


def test_a_pull_past_its_time_is_aborted_and_says_so() -> None:
    dom = _PullingDomain(jobs=10**6)
    with pytest.raises(VolumeError, match="not done within 0s; aborted"):
        chain.pull(dom, "vda", None, timeout=0, poll=0)
    assert dom.calls[-1] == ("abort", "vda")


def test_a_refused_resume_after_the_flush_is_tried_again() -> None:
    dom = _PullingDomain(jobs=1, refused_resumes=2)
    chain.pull(dom, "vdb", None, poll=0)
    assert dom.calls[1:] == [("suspend",), ("resume",), ("resume",), ("resume",)] and dom.running == 1


def test_a_guest_that_cannot_be_resumed_is_named_with_what_to_do() -> None:
    dom = _PullingDomain(jobs=0, refused_resumes=10**6)
    with pytest.raises(VolumeError, match=r"stays paused; `virsh resume` it"):
        chain.pull(dom, "vdb", None, poll=0)
    assert dom.calls.count(("resume",)) == chain.RESUME_ATTEMPTS
