"""Names the VirtualMachinePool's API server side and its controller share: the annotation in
which `scaledownwith` names the replicas a scale-down removes, read by the controller and by the
admission check of Explicit pools."""

from __future__ import annotations

import json
from typing import Any

SCALE_DOWN_TARGETS = "vmpool.virtualization.deckhouse.io/scale-down-targets"
"""JSON list of member names the next scale-down removes (set by `scaledownwith`)."""


def scale_down_targets(pool: dict[str, Any]) -> list[str]:
    raw = ((pool.get("metadata") or {}).get("annotations") or {}).get(SCALE_DOWN_TARGETS) or "[]"
    try:
        names = json.loads(raw)
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
