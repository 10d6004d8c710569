"""What a node handler publishes about its host's and its VMs' resource use, for
`metrics.k8s.io` (`kubectl top node`) and `dvp v top`: one typed record, written by the node
handler as an annotation of its Node and read by the API server and the CLI — parsed and
built here only.

The figures are rates over a window, as metrics-server reports them: CPU in nanocores
(cores used × 10⁹, averaged over `window` seconds) and memory as the working set in bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

USAGE_ANNOTATION = "metrics.virtualization.deckhouse.io/usage"


@dataclass(frozen=True)
class Usage:
    cpu_nanocores: int
    memory_bytes: int

    def cpu_quantity(self) -> str:
        return f"{self.cpu_nanocores}n"

    def memory_quantity(self) -> str:
        return f"{self.memory_bytes // 1024}Ki"


@dataclass(frozen=True)
class NodeUsage:
    timestamp: str
    """RFC 3339 time of the sample's end."""
    window: float
    """Seconds the CPU rate was measured over."""
    node: Usage
    vms: dict[str, Usage] = field(default_factory=dict)
    """Per VM, keyed `namespace/name`."""

    def to_annotation(self) -> str:
        return json.dumps({
            "timestamp": self.timestamp, "window": self.window,
            "cpu": self.node.cpu_nanocores, "memory": self.node.memory_bytes,
            "vms": {k: {"cpu": v.cpu_nanocores, "memory": v.memory_bytes} for k, v in sorted(self.vms.items())},
        }, separators=(",", ":"))

    @classmethod
    def from_annotation(cls, text: str) -> NodeUsage:
        """Raises ValueError when `text` is not a usage record."""
        try:
            doc: dict[str, Any] = json.loads(text)
            vms = {str(k): Usage(int(v["cpu"]), int(v["memory"])) for k, v in (doc.get("vms") or {}).items()}
            return cls(str(doc["timestamp"]), float(doc["window"]), Usage(int(doc["cpu"]), int(doc["memory"])), vms)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{USAGE_ANNOTATION} is not a usage record: {exc}") from exc

    @classmethod
    def of_node(cls, node: dict[str, Any]) -> NodeUsage | None:
        """The record a Node carries, or None (no handler published one, or it is unreadable)."""
        text = ((node.get("metadata") or {}).get("annotations") or {}).get(USAGE_ANNOTATION)
        if not text:
            return None
        try:
            return cls.from_annotation(text)
        except ValueError:
            return None
