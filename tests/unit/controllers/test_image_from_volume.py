"""An image from a VirtualDisk or a VirtualDiskSnapshot (`image/from_volume.py`): where its bytes
are read (the volume's node's console endpoint, with the controllers' token and the platform CA)
and why it waits instead (source missing or not Ready, a disk a running VM uses, a node gone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane.api.resources import (
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINES,
    VOLUMES,
)
from controlplane.common.kube.client import NODES
from controlplane.controllers.image.from_volume import volume_source
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.settings import PlatformSettings
from tests.unit.controllers.recorders import CollectedEvents


class Kube:
    bearer_token = "controllers-token"


def ctx_with(tmp_path: Path, *objs: tuple[Any, dict[str, Any]]) -> Context:
    (tmp_path / "ca.crt").write_text("CA PEM")
    ctx = Context(kube=Kube(), settings=PlatformSettings(dvcr_ca_file=str(tmp_path / "ca.crt")),  # type: ignore[arg-type]
                  recorder=CollectedEvents())
    for res in (VIRTUAL_DISKS, VIRTUAL_DISK_SNAPSHOTS, VOLUMES, NODES, VIRTUAL_MACHINES, VIRTUAL_IMAGES):
        ctx.informer(res)
    for res, obj in objs:
        ctx.informer(res)._apply({"type": "ADDED", "object": obj})
    return ctx


def obj(name: str, ns: str = "team", *, status: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": "1"},
            "status": status or {}, **extra}


NODE = {"metadata": {"name": "n1", "resourceVersion": "1"}, "status": {
    "addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}
DISK = obj("root", status={"phase": "Ready"})
VOLUME = obj("root", spec={"nodeName": "n1"}, status={"phase": "Ready", "path": "/x"})
IMAGE = obj("img", spec={})


def source(ctx: Context, kind: str, name: str) -> Any:
    return volume_source(State(ctx, VIRTUAL_IMAGES, IMAGE), {"kind": kind, "name": name})


def test_a_ready_disk_is_read_from_its_node(tmp_path: Path) -> None:
    found = source(ctx_with(tmp_path, (VIRTUAL_DISKS, DISK), (VOLUMES, VOLUME), (NODES, NODE)), "VirtualDisk", "root")
    assert found.problem == ""
    assert found.url == "https://10.0.0.7:10250/v1/namespaces/team/volumes/root/data"
    assert (found.ca_bundle, found.bearer) == ("CA PEM", "controllers-token")


def test_a_snapshot_is_read_from_its_copy(tmp_path: Path) -> None:
    snap = obj("s1", status={"phase": "Ready"})
    copy = obj("vds-uid-s1", spec={"nodeName": "n1"}, status={"phase": "Ready"})
    found = source(ctx_with(tmp_path, (VIRTUAL_DISK_SNAPSHOTS, snap), (VOLUMES, copy), (NODES, NODE)),
                   "VirtualDiskSnapshot", "s1")
    assert found.url.endswith("/v1/namespaces/team/volumes/vds-uid-s1/data")


@pytest.mark.parametrize(("objs", "reason", "words"), [
    ([], "ImageNotFound", "VirtualDisk team/root does not exist"),
    ([(VIRTUAL_DISKS, obj("root", status={"phase": "Provisioning"}))], "ImageNotReady", "is Provisioning, not Ready"),
    ([(VIRTUAL_DISKS, DISK), (VOLUMES, VOLUME)], "ImageNotReady", "node n1, which holds VirtualDisk team/root"),
    ([(VIRTUAL_DISKS, DISK), (VOLUMES, VOLUME), (NODES, NODE),
      (VIRTUAL_MACHINES, obj("vm1", spec={"blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"}]},
                             status={"phase": "Running"}))],
     "VirtualDiskAttachedToRunningVM", "used by VirtualMachine vm1, which runs"),
])
def test_the_image_waits_saying_why(tmp_path: Path, objs: list[tuple[Any, dict[str, Any]]], reason: str,
                                    words: str) -> None:
    found = source(ctx_with(tmp_path, *objs), "VirtualDisk", "root")
    assert found.reason == reason and words in found.problem and found.url == ""
