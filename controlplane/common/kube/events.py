"""Kubernetes Events for users (`kubectl describe` shows them): one Event per
(object, reason, message), its count and lastTimestamp bumped on repeats."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from typing import Any

from controlplane.common.kube.client import EVENTS, KubeClient, KubeError

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, kube: KubeClient, component: str, *, host: str = "") -> None:
        self.kube = kube
        self.component = component
        self.host = host
        self._lock = threading.Lock()

    def record(self, obj: dict[str, Any], *, type: str, reason: str, message: str) -> None:
        """Record an event about `obj` (type Normal or Warning); never raises."""
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        digest = hashlib.sha256(f"{meta.get('uid')}/{reason}/{message}".encode()).hexdigest()[:10]
        name = f"{meta.get('name', 'object')}.{digest}"[:253]
        now = _now()
        try:
            with self._lock:
                existing = self.kube.get_or_none(EVENTS, name, ns)
                if existing is not None:
                    self.kube.patch(EVENTS, name, {"count": int(existing.get("count") or 1) + 1,
                                                   "lastTimestamp": now}, ns)
                    return
                self.kube.create(EVENTS, {
                    "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
                    "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                                       "name": meta.get("name"), "namespace": meta.get("namespace"),
                                       "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
                    "reason": reason, "message": message, "type": type, "count": 1,
                    "firstTimestamp": now, "lastTimestamp": now,
                    "source": {"component": self.component, "host": self.host},
                    "reportingComponent": self.component, "reportingInstance": self.host,
                }, ns)
        except KubeError as exc:
            log.debug("event %s on %s not recorded: %s", reason, meta.get("name"), exc)
