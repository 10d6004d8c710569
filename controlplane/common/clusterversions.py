"""Which version every component of a running platform reports, read through the API.

- the API server: `/version` (`dvpVersion`, `dvpDataVersion`; `gitVersion` is
  `v1.28.0-dvp.<version>`, kubectl-compatible);
- the controllers: the Lease `d8-virtualization/dvp-controllers` their leader renews, with the
  leader's version in the annotation `virtualization.deckhouse.io/dvp-version`;
- every node handler: its Node's label and annotation
  `virtualization.deckhouse.io/node-handler-version` (label values are sanitised; the annotation
  holds the exact string) and `status.nodeInfo.kubeletVersion` (`dvp-<version>`), with Ready.

Shown by `dvp version --cluster`; `dvp upgrade` uses the same reading for its preflight and its
health checks (controllers leading = Lease renewed within its duration).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from controlplane.common.kube.client import LEASES, NODES, KubeClient

VERSION_ANNOTATION = "virtualization.deckhouse.io/dvp-version"
HANDLER_VERSION = "virtualization.deckhouse.io/node-handler-version"
"""Same name as `controlplane.api.internal.LABEL_HANDLER_VERSION` (checked by a unit test)."""
CONTROLLERS_NAMESPACE = "d8-virtualization"
CONTROLLERS_LEASE = "dvp-controllers"


def label_value(text: str) -> str:
    """`text` as a valid label value (alphanumerics, '-', '_', '.'; 63 chars; alnum at both ends):
    how the node handler writes its version label, and how `dvp upgrade` selects upgraded Nodes."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:63]
    return value.strip("-_.")


@dataclass
class NodeVersion:
    name: str
    version: str
    ready: bool
    unschedulable: bool
    ready_reason: str = ""
    heartbeat: str = ""


@dataclass
class ClusterVersions:
    server: str = ""
    data_version: int = 0
    git_version: str = ""
    controllers: str = ""
    controllers_holder: str = ""
    controllers_leading: bool = False
    nodes: list[NodeVersion] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": {"version": self.server, "dataVersion": self.data_version, "gitVersion": self.git_version},
            "controllers": {"version": self.controllers, "holder": self.controllers_holder,
                            "leading": self.controllers_leading},
            "nodes": [asdict(n) for n in self.nodes],
            "errors": self.errors,
        }

    def versions(self) -> set[str]:
        """Every distinct version reported (empty ones left out)."""
        found = {self.server, self.controllers, *(n.version for n in self.nodes)}
        return {v for v in found if v}


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def node_version(node: dict[str, Any]) -> NodeVersion:
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    version = (meta.get("annotations") or {}).get(HANDLER_VERSION) or (meta.get("labels") or {}).get(HANDLER_VERSION, "")
    if not version:
        kubelet = (status.get("nodeInfo") or {}).get("kubeletVersion", "")
        version = kubelet.removeprefix("dvp-") if kubelet.startswith("dvp-") else ""
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return NodeVersion(name=meta.get("name", ""), version=version, ready=ready.get("status") == "True",
                       unschedulable=bool((node.get("spec") or {}).get("unschedulable")),
                       ready_reason=ready.get("reason", ""), heartbeat=ready.get("lastHeartbeatTime", ""))


def lease_is_held(lease: dict[str, Any], *, now: dt.datetime | None = None) -> bool:
    spec = lease.get("spec") or {}
    renewed = _parse_time(spec.get("renewTime"))
    if not spec.get("holderIdentity") or renewed is None:
        return False
    now = now or dt.datetime.now(dt.UTC)
    return (now - renewed).total_seconds() < float(spec.get("leaseDurationSeconds") or 15)


def collect(kube: KubeClient) -> ClusterVersions:
    """Read every component's version; what cannot be read is listed in `errors`."""
    out = ClusterVersions()
    try:
        info = kube.request("GET", "/version")
        out.server = str(info.get("dvpVersion", ""))
        out.data_version = int(info.get("dvpDataVersion", 0) or 0)
        out.git_version = str(info.get("gitVersion", ""))
    except Exception as exc:  # unreachable, refused, TLS, bad answer: reported, not raised
        out.errors.append(f"API server /version: {exc}")
    try:
        lease = kube.get_or_none(LEASES, CONTROLLERS_LEASE, CONTROLLERS_NAMESPACE)
        if lease is None:
            out.errors.append(f"no Lease {CONTROLLERS_NAMESPACE}/{CONTROLLERS_LEASE}: the controllers never led")
        else:
            out.controllers = ((lease.get("metadata") or {}).get("annotations") or {}).get(VERSION_ANNOTATION, "")
            out.controllers_holder = str((lease.get("spec") or {}).get("holderIdentity", ""))
            out.controllers_leading = lease_is_held(lease)
    except Exception as exc:
        out.errors.append(f"controllers Lease: {exc}")
    try:
        out.nodes = sorted((node_version(n) for n in kube.list(NODES).get("items", [])), key=lambda n: n.name)
    except Exception as exc:
        out.errors.append(f"Nodes: {exc}")
    return out
