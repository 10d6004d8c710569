"""What every part of the node handler shares: the configuration, the on-disk layout, the API
client and caches of this node's objects, libvirt, the VM network, the image cache and the
hypervisor decision. Built once by the agent (agent.py) and handed to each reconciler."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from controlplane.api.internal import (
    GROUP,
    INSTANCE_KIND,
    INSTANCE_PLURAL,
    VERSION,
    VOLUME_KIND,
    VOLUME_PLURAL,
)
from controlplane.common.kube.client import KubeClient, KubeError, Resource
from controlplane.common.kube.events import EventRecorder
from controlplane.common.kube.informer import Informer
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings
from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.domains import Domains
from controlplane.nodehandler.hypervisor import Decision, HostFacts
from controlplane.nodehandler.images import ImageCache
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.network import NodeNetwork

INSTANCES = Resource(GROUP, VERSION, INSTANCE_PLURAL, INSTANCE_KIND)
VOLUMES = Resource(GROUP, VERSION, VOLUME_PLURAL, VOLUME_KIND)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class NodeContext:
    config: AgentConfig
    layout: Layout
    kube: KubeClient
    domains: Domains
    network: NodeNetwork
    images: ImageCache
    facts: HostFacts
    decision: Decision
    instances: Informer
    volumes: Informer
    events: EventRecorder
    runtime: RuntimeSettings = DEFAULT
    """Every delay the node handler waits or retries after (`common.kube.settings`)."""
    cpu_quota: bool = True
    """False once libvirt refused a CPU quota (no cgroup cpu controller): coreFraction is then not
    enforced on this node, and instances that ask for one say so in their status message."""

    @property
    def node(self) -> str:
        return self.config.node_name

    def mine(self, obj: dict[str, Any]) -> bool:
        return bool((obj.get("spec") or {}).get("nodeName") == self.node)

    def remove_finalizer(self, res: Resource, obj: dict[str, Any], finalizer: str) -> None:
        meta = obj["metadata"]
        current = meta.get("finalizers") or []
        if finalizer not in current:
            return
        try:
            self.kube.patch(res, meta["name"], {"metadata": {
                "finalizers": [f for f in current if f != finalizer], "resourceVersion": meta["resourceVersion"]}},
                meta.get("namespace"))
        except KubeError as exc:
            if not exc.not_found:
                raise

    def add_finalizer(self, res: Resource, obj: dict[str, Any], finalizer: str) -> dict[str, Any]:
        meta = obj["metadata"]
        current = meta.get("finalizers") or []
        if finalizer in current or meta.get("deletionTimestamp"):
            return obj
        return self.kube.patch(res, meta["name"], {"metadata": {
            "finalizers": [*current, finalizer], "resourceVersion": meta["resourceVersion"]}}, meta.get("namespace"))
