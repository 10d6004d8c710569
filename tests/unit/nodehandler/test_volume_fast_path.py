"""Volumes made at once: the qcow2 header read in Python agrees with `qemu-img info` (virtual
size, backing file, after a resize; a raw file falls back to qemu-img), and the volume
reconciler takes a snapshot or an empty volume straight to Ready with one status write, while
a copy that takes time still shows Provisioning first and goes from there to Ready in one write
(real qcow2 files, a recording API)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from controlplane.nodehandler import qcow2_header, storage, volume_chain
from tests.unit.nodehandler.volume_support import MI, create, reconciler, volume


def _info(path: Path) -> dict[str, Any]:
    done = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, text=True,
                          check=True)
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def test_the_header_agrees_with_qemu_img(tmp_path: Path) -> None:
    base = create(tmp_path / "base.qcow2", 8 * MI)
    relative = create(tmp_path / "rel.qcow2", 12 * MI, backing="base.qcow2")
    absolute = create(tmp_path / "abs.qcow2", 8 * MI, backing=str(base))
    for path in (base, relative, absolute):
        header = qcow2_header.read(path)
        info = _info(path)
        assert header is not None and header.virtual_size == info["virtual-size"]
        want = info.get("full-backing-filename")
        assert header.backing == (Path(want) if want else None)
    subprocess.run(["qemu-img", "resize", "-q", "-f", "qcow2", str(base), str(20 * MI)], check=True)
    assert storage.capacity(base) == 20 * MI == _info(base)["virtual-size"]


def test_a_file_that_is_not_qcow2_is_measured_by_qemu_img(tmp_path: Path) -> None:
    raw = create(tmp_path / "raw.img", 3 * MI, fmt="raw")
    assert qcow2_header.read(raw) is None and qcow2_header.read(tmp_path / "missing") is None
    assert storage.capacity(raw) == 3 * MI
    assert volume_chain.backing(raw) is None


def test_a_snapshot_and_an_empty_volume_go_straight_to_ready(tmp_path: Path) -> None:
    disk = volume("disk", "u1", {"size": "8Mi"}, {"phase": "Ready"})
    snap = volume("snap", "u2", {"size": "8Mi", "source": {"volume": {"name": "disk", "snapshot": True}}})
    empty = volume("blank", "u3", {"size": "4Mi"})
    rec, api, layout = reconciler(tmp_path, [disk, snap, empty])
    create(layout.volume("ns", "disk", "u1"), 8 * MI)
    rec.reconcile(("ns", "snap"))
    assert [s["phase"] for s in api.statuses] == ["Ready"]
    assert api.statuses[0]["consistent"] is True and api.statuses[0]["capacityBytes"] == 8 * MI
    assert api.statuses[0]["progress"] == "100%"
    assert volume_chain.backing(layout.volume("ns", "disk", "u1")) == layout.volume("ns", "snap", "u2")
    rec.reconcile(("ns", "blank"))
    assert [s["phase"] for s in api.statuses] == ["Ready", "Ready"]
    assert api.statuses[1]["capacityBytes"] == 4 * MI


def test_a_copy_shows_provisioning_before_ready(tmp_path: Path) -> None:
    """A disk that is not a snapshot, cloned with files built on it: a flat copy, which takes time."""
    disk = volume("disk", "u1", {"size": "8Mi"}, {"phase": "Ready"})
    clone = volume("clone", "u4", {"size": "8Mi", "source": {"volume": {"name": "disk"}}})
    rec, api, layout = reconciler(tmp_path, [disk, clone])
    create(layout.volume("ns", "disk", "u1"), 8 * MI)
    rec.reconcile(("ns", "clone"))
    phases = [(s["phase"], s.get("progress")) for s in api.statuses]
    assert phases == [("Provisioning", "0%"), ("Ready", "100%")]
    assert api.statuses[-1]["consistent"] is True
    assert layout.volume("ns", "clone", "u4").exists()


@pytest.fixture(autouse=True)
def _no_leaked_lock() -> Any:
    yield
    assert volume_chain.LOCK.idle()
