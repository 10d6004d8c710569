"""A VirtualImage or ClusterVirtualImage made from a VirtualDisk or a VirtualDiskSnapshot
(`dataSource.objectRef.kind`), as DVP allows.

Both live as an InternalVirtualDiskVolume on one node (a disk's own volume; a snapshot's
`vds-<uid>` copy). The importer reads the volume's qcow2 from that node's console endpoint
(`nodehandler/volume_data.py`: HTTPS with the platform CA, the controllers' token, checked by
the node with a SubjectAccessReview) and pushes it into DVCR like any HTTP source. A disk a
running VM uses is not read (its guest may be writing: stop the VM, or make the image from a
snapshot of the disk); a source that is not Ready, or whose node is gone, blocks the image
with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.api.internal import console_endpoint
from controlplane.api.resources import VIRTUAL_DISK_SNAPSHOTS, VIRTUAL_DISKS, VOLUMES
from controlplane.api.snapshots import snapshot_volume_name
from controlplane.common.kube.client import NODES
from controlplane.controllers.runtime.state import State
from controlplane.controllers.snapshot.vdsnapshot import running_user

KINDS = ("VirtualDisk", "VirtualDiskSnapshot")


@dataclass(frozen=True)
class VolumeSource:
    url: str = ""
    ca_bundle: str | None = None
    bearer: str = ""
    problem: str = ""
    """Why the source cannot be read now (the image waits), or "" when it can."""
    reason: str = ""


def volume_source(state: State, ref: dict[str, Any]) -> VolumeSource:
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    namespace = str(ref.get("namespace") or "") if not state.resource.namespaced else state.namespace
    res = VIRTUAL_DISKS if kind == "VirtualDisk" else VIRTUAL_DISK_SNAPSHOTS
    obj = state.get(res, name, namespace)
    if obj is None:
        return VolumeSource(problem=f"{kind} {namespace}/{name} does not exist: create it, or fix "
                                    "spec.dataSource.objectRef", reason="ImageNotFound")
    if (obj.get("status") or {}).get("phase") != "Ready":
        return VolumeSource(problem=f"{kind} {namespace}/{name} is {(obj.get('status') or {}).get('phase') or 'Pending'}"
                                    ", not Ready", reason="ImageNotReady")
    if kind == "VirtualDisk":
        user = running_user(state, name, namespace)
        if user is not None:
            return VolumeSource(problem=f"VirtualDisk {namespace}/{name} is used by VirtualMachine "
                                        f"{user['metadata']['name']}, which runs: "
                                        "stop it, or make the image from a VirtualDiskSnapshot of the disk",
                                reason="VirtualDiskAttachedToRunningVM")
        volume_name = name
    else:
        volume_name = snapshot_volume_name(str(obj["metadata"].get("uid") or ""))
    volume = state.get(VOLUMES, volume_name, namespace)
    node_name = ((volume or {}).get("spec") or {}).get("nodeName")
    if not node_name or ((volume or {}).get("status") or {}).get("phase") != "Ready":
        return VolumeSource(problem=f"the volume of {kind} {namespace}/{name} is not Ready on any node",
                            reason="ImageNotReady")
    endpoint = console_endpoint(state.get(NODES, str(node_name)))
    if not endpoint:
        return VolumeSource(problem=f"node {node_name}, which holds {kind} {namespace}/{name}, publishes no endpoint "
                                    "(it is gone or its node handler is not running)", reason="ImageNotReady")
    settings = state.ctx.settings
    ca = Path(settings.dvcr_ca_file).read_text() if settings.dvcr_ca_file else None
    return VolumeSource(url=f"https://{endpoint}/v1/namespaces/{namespace}/volumes/{volume_name}/data",
                        ca_bundle=ca, bearer=state.ctx.kube.bearer_token)

