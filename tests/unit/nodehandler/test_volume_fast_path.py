"""Volumes made at once: the qcow2 header read in Python agrees with `qemu-img info` (virtual
size, backing file, after a resize; a raw file falls back to qemu-img), and the volume
reconciler takes a snapshot or an empty volume straight to Ready with one status write, while
a copy that takes time still shows Provisioning first (real qcow2 files, a recording API)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from controlplane.api.internal import VOLUME_FINALIZER
from controlplane.nodehandler import qcow2_header, storage, volume_chain
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.volumes import VolumeReconciler

MI = 2**20


def _info(path: Path) -> dict[str, Any]:
    done = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, text=True,
                          check=True)
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def _create(path: Path, size: int, *, backing: str | None = None, fmt: str = "qcow2") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = ["-F", "qcow2", "-b", backing] if backing else []
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, *extra, str(path), str(size)], check=True)
    return path


def test_the_header_agrees_with_qemu_img(tmp_path: Path) -> None:
    base = _create(tmp_path / "base.qcow2", 8 * MI)
    relative = _create(tmp_path / "rel.qcow2", 12 * MI, backing="base.qcow2")
    absolute = _create(tmp_path / "abs.qcow2", 8 * MI, backing=str(base))
    for path in (base, relative, absolute):
        header = qcow2_header.read(path)
        info = _info(path)
        assert header is not None and header.virtual_size == info["virtual-size"]
        want = info.get("full-backing-filename")
        assert header.backing == (Path(want) if want else None)
    subprocess.run(["qemu-img", "resize", "-q", "-f", "qcow2", str(base), str(20 * MI)], check=True)
    assert storage.capacity(base) == 20 * MI == _info(base)["virtual-size"]


def test_a_file_that_is_not_qcow2_is_measured_by_qemu_img(tmp_path: Path) -> None:
    raw = _create(tmp_path / "raw.img", 3 * MI, fmt="raw")
    assert qcow2_header.read(raw) is None and qcow2_header.read(tmp_path / "missing") is None
    assert storage.capacity(raw) == 3 * MI
    assert volume_chain.backing(raw) is None


class _Api:
    """Records status writes; answers like the API (a new resourceVersion each time)."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def replace(self, res: Any, obj: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        assert subresource == "status"
        with self.lock:
            self.statuses.append(obj["status"])
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(len(self.statuses) + 10)}}


def _volume(name: str, uid: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1", "generation": 1,
                         "finalizers": [VOLUME_FINALIZER]},
            "spec": {"nodeName": "n1", **spec}, **({"status": status} if status else {})}


def _reconciler(tmp_path: Path, objects: list[dict[str, Any]]) -> tuple[VolumeReconciler, _Api, Layout]:
    api = _Api()
    layout = Layout(tmp_path / "state", tmp_path / "run")
    by_key = {("ns", o["metadata"]["name"]): o for o in objects}
    ctx = SimpleNamespace(
        kube=api, layout=layout, node="n1",
        volumes=SimpleNamespace(get=lambda ns, name: by_key.get((ns, name))),
        mine=lambda obj: obj["spec"]["nodeName"] == "n1",
        add_finalizer=lambda res, obj, fin: obj,
        events=SimpleNamespace(record=lambda *a, **k: None),
        domains=SimpleNamespace(active_owned=lambda: {}, lookup=lambda uid: None),
        runtime=SimpleNamespace(volume_in_use_retry=1.0, volume_failed_retry=1.0, progress_every=1.0),
    )
    return VolumeReconciler(ctx), api, layout  # type: ignore[arg-type]


def test_a_snapshot_and_an_empty_volume_go_straight_to_ready(tmp_path: Path) -> None:
    disk = _volume("disk", "u1", {"size": "8Mi"}, {"phase": "Ready"})
    snap = _volume("snap", "u2", {"size": "8Mi", "source": {"volume": {"name": "disk", "snapshot": True}}})
    empty = _volume("blank", "u3", {"size": "4Mi"})
    rec, api, layout = _reconciler(tmp_path, [disk, snap, empty])
    _create(layout.volume("ns", "disk", "u1"), 8 * MI)
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
    disk = _volume("disk", "u1", {"size": "8Mi"}, {"phase": "Ready"})
    clone = _volume("clone", "u4", {"size": "8Mi", "source": {"volume": {"name": "disk"}}})
    rec, api, layout = _reconciler(tmp_path, [disk, clone])
    _create(layout.volume("ns", "disk", "u1"), 8 * MI)
    rec.reconcile(("ns", "clone"))
    phases = [(s["phase"], s.get("progress")) for s in api.statuses]
    assert phases == [("Provisioning", "0%"), ("Provisioning", "100%"), ("Ready", "100%")]
    assert layout.volume("ns", "clone", "u4").exists()


@pytest.fixture(autouse=True)
def _no_leaked_lock() -> Any:
    yield
    assert volume_chain.LOCK.idle()
