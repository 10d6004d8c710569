"""An Explicit VirtualMachinePool refuses an unaddressed scale-down (DVP's webhook), and lets one
through when `scaledownwith` named as many replicas as it removes."""

from __future__ import annotations

import json
from typing import Any

from controlplane.api.vmpool import SCALE_DOWN_TARGETS
from controlplane.apiserver.admission_vmpool import validate


class Info:
    group, kind = "virtualization.deckhouse.io", "VirtualMachinePool"


def pool(replicas: int, policy: str = "Explicit", targets: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "runners"}
    if targets is not None:
        meta["annotations"] = {SCALE_DOWN_TARGETS: json.dumps(targets)}
    return {"metadata": meta, "spec": {"replicas": replicas, "scaleDownPolicy": policy}}


def test_explicit_pools_are_scaled_down_by_name_only() -> None:
    (cause,) = validate(Info(), pool(2), pool(3))  # type: ignore[arg-type]
    assert cause.field == "spec.replicas" and "scaledownwith" in cause.message
    assert validate(Info(), pool(2, targets=["r-1"]), pool(3)) == []  # type: ignore[arg-type]
    assert validate(Info(), pool(1, targets=["r-1"]), pool(3)) != []  # type: ignore[arg-type]
    assert validate(Info(), pool(4), pool(3)) == []  # type: ignore[arg-type]  # up is always fine
    assert validate(Info(), pool(2, "NewestFirst"), pool(3, "NewestFirst")) == []  # type: ignore[arg-type]
    assert validate(Info(), pool(2), None) == []  # type: ignore[arg-type]  # a create
