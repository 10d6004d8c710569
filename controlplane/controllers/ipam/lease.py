"""The VirtualMachineIPAddressLease reconciler: Bound while its VirtualMachineIPAddress
exists and claims it; Released otherwise — held for the old namespace for
`ip_lease_hold_seconds` (DVP: 10 minutes), then deleted."""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    VIRTUAL_MACHINE_IP_ADDRESS_LEASES as LEASES,
)
from controlplane.api.resources import (
    VIRTUAL_MACHINE_IP_ADDRESSES as VMIPS,
)
from controlplane.api.v1alpha2 import VirtualMachineIPAddressLeasePhase as Phase
from controlplane.api.v1alpha2 import VMIPLCondition as C
from controlplane.controllers.ipam import allocator
from controlplane.controllers.names import ANNOTATION_RELEASED_AT
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, fields_changed, own_key


class BoundHandler:
    name = "bound"

    def handle(self, state: State) -> None:
        ref = state.spec.get("virtualMachineIPAddressRef") or {}
        vmip = state.get(VMIPS, ref["name"], ref.get("namespace")) if ref.get("name") else None
        claims = vmip is not None and not (vmip["metadata"].get("deletionTimestamp")) and \
            (vmip.get("status") or {}).get("address") in (None, allocator.address_of_lease(state.name))
        if claims:
            (state.meta.get("annotations") or {}).pop(ANNOTATION_RELEASED_AT, None)
            state.status["phase"] = Phase.BOUND
            conditions.set_condition(state.status, C.Type.BOUND, True, C.BoundReason.BOUND,
                                     f"bound to {ref.get('namespace')}/{ref.get('name')}", generation=state.generation)
            return
        if ref.get("name") and vmip is None:  # its address claim is gone: drop the name, keep the namespace
            state.ctx.kube.patch(LEASES, state.name, {"spec": {"virtualMachineIPAddressRef": {
                "name": "", "namespace": ref.get("namespace", "")}}})
        state.status["phase"] = Phase.RELEASED
        conditions.set_condition(state.status, C.Type.BOUND, False, C.BoundReason.RELEASED,
                                 f"released; held for namespace {ref.get('namespace')!r} for a while",
                                 generation=state.generation)
        annotations = state.meta.setdefault("annotations", {})
        released = annotations.setdefault(ANNOTATION_RELEASED_AT, conditions.timestamp())
        at = dt.datetime.fromisoformat(released.replace("Z", "+00:00"))
        left = state.ctx.settings.ip_lease_hold_seconds - (dt.datetime.now(dt.UTC) - at).total_seconds()
        if left <= 0:
            state.ctx.kube.delete_if_exists(LEASES, state.name)
            state.stop = True
        else:
            state.requeue(left)


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    def lease_of_vmip(vmip: dict[str, Any]) -> list[tuple[str, str]]:
        address = (vmip.get("status") or {}).get("address")
        return [("", allocator.lease_name(address))] if address else []

    # a lease reads of its address claim its address, existence and deletion
    return (Reconciler(ctx, LEASES, [BoundHandler()], failure_condition=C.Type.BOUND, drop_echoes=True),
            [Watch(LEASES, lambda o: [own_key(o)]), Watch(VMIPS, lease_of_vmip, relevant=fields_changed(("status", "address")))])
