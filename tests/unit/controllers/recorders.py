"""An event recorder for unit tests of controllers: it keeps what is recorded and writes nothing."""

from __future__ import annotations

from typing import Any

from controlplane.common.kube.events import EventRecorder


class CollectedEvents(EventRecorder):
    def __init__(self) -> None:  # no client: nothing is written
        self.events: list[dict[str, Any]] = []

    def record(self, obj: dict[str, Any], *, type: str, reason: str, message: str) -> None:
        self.events.append({"name": (obj.get("metadata") or {}).get("name"), "type": type, "reason": reason,
                            "message": message})
