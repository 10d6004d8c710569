"""A VMOP Restore of a disk that still exists puts its volume back in place (`spec.revert`): the
volume's file becomes a new empty overlay on the snapshot's file, with no process run; a crash
before the final rename leaves the disk as it was; files built on the old file keep their
content; the reconciler reverts once per id, refuses for good a revert that finds a running
domain on the file, and refuses a volume that is not a snapshot's (real qcow2 files, qemu-io reads them)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from controlplane.nodehandler import volume_chain as chain
from controlplane.nodehandler.storage import VolumeError
from tests.unit.nodehandler.volume_support import MI, create, reconciler, volume


def _io(path: Path, op: str) -> str:
    done = subprocess.run(["qemu-io", "-f", "qcow2", "-c", op, str(path)], capture_output=True, text=True, check=True)
    return done.stdout


def _holds(path: Path, pattern: int) -> bool:
    return "Pattern verification failed" not in _io(path, f"read -P {pattern:#x} 0 1M")


@pytest.fixture
def frozen(tmp_path: Path) -> tuple[Path, Path]:
    """(disk, snapshot): the disk held 0x5a when the snapshot took its file; it holds 0xcc since."""
    disk = create(tmp_path / "volumes" / "ns" / "disk.u1.qcow2", 8 * MI)
    _io(disk, "write -P 0x5a 0 1M")
    snap = disk.with_name("snap.u2.qcow2")
    chain.freeze(disk, snap)
    _io(disk, "write -P 0xcc 0 1M")
    return disk, snap


def test_a_revert_puts_the_snapshots_content_back_without_a_process(
        frozen: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    disk, snap = frozen
    old_inode = disk.stat().st_ino

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a process was run: {args}")
    monkeypatch.setattr(subprocess, "run", no_process)
    assert chain.revert(disk, snap, disk.parent.parent) == []
    monkeypatch.undo()
    assert disk.stat().st_ino != old_inode and not chain.overlay_path(disk).exists()
    assert chain.backing(disk) == snap and _holds(disk, 0x5A) and _holds(snap, 0x5A)
    assert disk.stat().st_size < MI, "an empty overlay: nothing copied"
    subprocess.run(["qemu-img", "check", "-q", str(disk)], check=True)


def test_a_crash_before_the_rename_leaves_the_disk_as_it_was(frozen: tuple[Path, Path]) -> None:
    disk, snap = frozen
    chain._create_overlay(snap, chain.overlay_path(disk), 8 * MI)  # the revert's first step, then a crash
    done = chain.recover(disk.parent.parent)
    assert len(done) == 1 and "undone" in done[0]
    assert _holds(disk, 0xCC) and not chain.overlay_path(disk).exists()
    chain.revert(disk, snap, disk.parent.parent)  # asked again
    assert _holds(disk, 0x5A)


def test_files_built_on_the_old_file_keep_their_content(frozen: tuple[Path, Path]) -> None:
    disk, snap = frozen
    built = disk.with_name("built.u3.qcow2")
    chain._create_overlay(disk, built, 8 * MI)
    done = chain.revert(disk, snap, disk.parent.parent)
    assert len(done) == 1 and chain.backing(built) == snap
    assert _holds(built, 0xCC) and _holds(disk, 0x5A)


def test_a_snapshot_file_that_is_gone_is_named(frozen: tuple[Path, Path]) -> None:
    disk, snap = frozen
    with pytest.raises(VolumeError, match="nothing.u9.qcow2 is gone"):
        chain.revert(disk, snap.with_name("nothing.u9.qcow2"), disk.parent.parent)
    assert _holds(disk, 0xCC) and not chain.overlay_path(disk).exists()


def test_a_revert_the_check_forbids_after_the_overlay_is_made_leaves_no_trace(frozen: tuple[Path, Path]) -> None:
    disk, snap = frozen
    asked: list[bool] = []

    def forbidden() -> None:
        asked.append(chain.overlay_path(disk).exists())
        raise RuntimeError("a running domain has it")
    with pytest.raises(RuntimeError, match="a running domain has it"):
        chain.revert(disk, snap, disk.parent.parent, allowed=forbidden)
    assert asked == [True], "asked once the new overlay is written, so that both go on at once"
    assert _holds(disk, 0xCC) and not chain.overlay_path(disk).exists()
    assert chain.backing(disk) == snap


def _world(tmp_path: Path, revert_to: str = "snap", *, running: bool = False) -> tuple[Any, Any, Path]:
    """A disk volume with a pending revert to `revert_to`, and the snapshot volume it was frozen into."""
    disk_obj = volume("disk", "u1", {"size": "8Mi", "revert": {"volume": revert_to, "id": "op1"}}, {"phase": "Ready"})
    snap_obj = volume("snap", "u2", {"size": "8Mi", "source": {"volume": {"name": "disk", "snapshot": True}}},
                      {"phase": "Ready"})
    other = volume("other", "u3", {"size": "8Mi"}, {"phase": "Ready"})
    rec, api, layout = reconciler(tmp_path, [disk_obj, snap_obj, other])
    path = layout.volume("ns", "disk", "u1")
    create(path, 8 * MI)
    _io(path, "write -P 0x5a 0 1M")
    chain.freeze(path, layout.volume("ns", "snap", "u2"))
    create(layout.volume("ns", "other", "u3"), 8 * MI)
    _io(path, "write -P 0xcc 0 1M")
    if running:
        xml = f"<domain><devices><disk><source file='{path}'/><target dev='vda'/></disk></devices></domain>"
        rec.ctx.domains.active_owned = lambda: {"i1": ({"namespace": "ns", "name": "vm"}, xml)}
    return rec, api, path


def test_the_reconciler_reverts_once_per_id(tmp_path: Path) -> None:
    rec, api, path = _world(tmp_path)
    rec.reconcile(("ns", "disk"))
    assert _holds(path, 0x5A)
    assert [(s["phase"], s.get("reverted")) for s in api.statuses] == [("Ready", "op1")]
    assert [(e["reason"], e["after"]) for e in api.events] == [("Reverted", 1)], "recorded after the status write"
    rec.ctx.volumes.get("ns", "disk")["status"] = api.statuses[-1]
    _io(path, "write -P 0x77 0 1M")  # the VM ran on after the restore
    rec.reconcile(("ns", "disk"))
    assert _holds(path, 0x77), "a revert done is not done again"


def test_a_revert_that_finds_a_running_domain_on_the_file_is_refused_for_good(tmp_path: Path) -> None:
    rec, api, path = _world(tmp_path, running=True)
    result = rec.reconcile(("ns", "disk"))
    assert result is not None and result.requeue_after is None
    assert _holds(path, 0xCC) and "reverted" not in api.statuses[-1]
    assert api.statuses[-1]["revertRefused"] == "op1" and "in use by ns/vm" in api.statuses[-1]["message"]
    assert not chain.overlay_path(path).exists(), "the overlay made while libvirt was asked is gone"
    rec.ctx.volumes.get("ns", "disk")["status"] = api.statuses[-1]
    rec.ctx.domains.active_owned = dict  # the VM stopped later: the old request is not carried out then
    rec.reconcile(("ns", "disk"))
    assert _holds(path, 0xCC) and "reverted" not in api.statuses[-1]


def test_a_running_domain_is_the_answer_whatever_else_stops_the_revert(tmp_path: Path) -> None:
    rec, api, path = _world(tmp_path, revert_to="other", running=True)
    rec.reconcile(("ns", "disk"))
    assert api.statuses[-1]["revertRefused"] == "op1" and "in use by ns/vm" in api.statuses[-1]["message"]
    assert _holds(path, 0xCC)


def test_a_revert_to_a_volume_that_is_not_a_snapshot_is_refused(tmp_path: Path) -> None:
    rec, api, path = _world(tmp_path, revert_to="other")
    rec.reconcile(("ns", "disk"))
    assert _holds(path, 0xCC) and "reverted" not in api.statuses[-1]
    assert "spec.revert.volume other is not a snapshot's volume" in api.statuses[-1]["message"]


@pytest.fixture(autouse=True)
def _no_leaked_lock() -> Any:
    yield
    assert chain.LOCK.idle()
