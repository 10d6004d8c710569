"""What every reconciler shares: the API client, the informer caches, the event recorder and
the platform settings."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from controlplane.common.kube.client import KubeClient, Resource
from controlplane.common.kube.events import EventRecorder
from controlplane.common.kube.informer import Informer
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings
from controlplane.controllers.settings import PlatformSettings


@dataclass
class Context:
    kube: KubeClient
    settings: PlatformSettings
    recorder: EventRecorder
    runtime: RuntimeSettings = DEFAULT
    informers: dict[Resource, Informer] = field(default_factory=dict)
    enqueuers: dict[Resource, Callable[[Hashable], None]] = field(default_factory=dict)
    """How to ask for a reconcile of an object of a kind (set by the manager)."""
    started: bool = False
    """Once the manager has started, a cache asked for late is started (and synced) at once."""
    shared: dict[str, Any] = field(default_factory=dict)
    """Views kept current from the caches' events that several handlers read (the nodes' loads)."""

    def informer(self, resource: Resource) -> Informer:
        inf = self.informers.get(resource)
        if inf is None:
            inf = Informer(self.kube, resource, settings=self.runtime)
            self.informers[resource] = inf
            if self.started:
                inf.start()
                inf.wait_synced(60)
        return inf

    def enqueue(self, resource: Resource, key: Hashable) -> None:
        fn = self.enqueuers.get(resource)
        if fn is not None:
            fn(key)

    def cached(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        return self.informer(resource).get(namespace if resource.namespaced else "", name)
