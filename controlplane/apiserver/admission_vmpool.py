"""DVP's validating admission for VirtualMachinePools, done in the API server after schema
validation (DVP runs it as a webhook): a pool whose `scaleDownPolicy` is `Explicit` refuses an
unaddressed scale-down — one that lowers `spec.replicas` (through the object or its `scale`
subresource, e.g. an autoscaler) without naming, through `scaledownwith`, the replicas it
removes."""

from __future__ import annotations

from typing import Any

from controlplane.api.vmpool import scale_down_targets
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.resources import ResourceInfo

GROUP = "virtualization.deckhouse.io"


def validate(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    if info.group != GROUP or info.kind != "VirtualMachinePool" or old is None:
        return []
    spec, before = obj.get("spec") or {}, old.get("spec") or {}
    if spec.get("scaleDownPolicy") != "Explicit":
        return []
    fewer = int(before.get("replicas") or 0) - int(spec.get("replicas") or 0)
    named = set(scale_down_targets(obj)) - set(scale_down_targets(old))
    if fewer > 0 and len(named) < fewer:
        return [Cause("spec.replicas", f"Forbidden: scaleDownPolicy is Explicit: replicas are removed by name, "
                      f"through the scaledownwith subresource of subresources.virtualization.deckhouse.io "
                      f"(from {before.get('replicas')} to {spec.get('replicas')} names {len(named)})",
                      "FieldValueForbidden")]
    return []
