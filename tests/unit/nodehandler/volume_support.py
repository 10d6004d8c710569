"""What the volume reconciler's unit tests share: real qcow2 files made with qemu-img, volume
objects as the API returns them, and a reconciler on a recording API with no libvirt."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from controlplane.api.internal import VOLUME_FINALIZER
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.volumes import VolumeReconciler

MI = 2**20


def create(path: Path, size: int, *, backing: str | None = None, fmt: str = "qcow2") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = ["-F", "qcow2", "-b", backing] if backing else []
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, *extra, str(path), str(size)], check=True)
    return path


class Api:
    """Records status writes and events; answers like the API (a new resourceVersion each time)."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def replace(self, res: Any, obj: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        assert subresource == "status"
        with self.lock:
            self.statuses.append(obj["status"])
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(len(self.statuses) + 10)}}


def volume(name: str, uid: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1", "generation": 1,
                         "finalizers": [VOLUME_FINALIZER]},
            "spec": {"nodeName": "n1", **spec}, **({"status": status} if status else {})}


def reconciler(tmp_path: Path, objects: list[dict[str, Any]],
               running: dict[str, tuple[dict[str, str], str]] | None = None) -> tuple[VolumeReconciler, Api, Layout]:
    """`running`: the running domains of this node libvirt would list ({uid: (metadata, XML)})."""
    api = Api()
    layout = Layout(tmp_path / "state", tmp_path / "run")
    by_key = {("ns", o["metadata"]["name"]): o for o in objects}
    ctx = SimpleNamespace(
        kube=api, layout=layout, node="n1",
        volumes=SimpleNamespace(get=lambda ns, name: by_key.get((ns, name))),
        mine=lambda obj: obj["spec"]["nodeName"] == "n1",
        add_finalizer=lambda res, obj, fin: obj,
        events=SimpleNamespace(record=lambda obj, **event: api.events.append({**event, "after": len(api.statuses)})),
        domains=SimpleNamespace(active_owned=lambda: running or {}, lookup=lambda uid: None),
        runtime=SimpleNamespace(volume_in_use_retry=1.0, volume_failed_retry=1.0, progress_every=1.0),
    )
    return VolumeReconciler(ctx), api, layout  # type: ignore[arg-type]
