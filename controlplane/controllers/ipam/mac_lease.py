"""The VirtualMachineMACAddressLease reconciler: Bound while its VirtualMachineMACAddress exists
and claims its address; not bound (condition False, saying why) while the claim disagrees; and
deleted once the VirtualMachineMACAddress is gone, so a MAC address is free again as soon as
its claim is (DVP keeps no hold on MAC addresses, unlike IP addresses)."""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_MACHINE_MAC_ADDRESS_LEASES as LEASES
from controlplane.api.resources import VIRTUAL_MACHINE_MAC_ADDRESSES as VMMACS
from controlplane.api.v1alpha2 import VirtualMachineMACAddressLeasePhase as Phase
from controlplane.api.v1alpha2 import VMMACLCondition as C
from controlplane.controllers.ipam import mac_allocator as allocator
from controlplane.controllers.ipam.vmmac import holder
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, fields_changed, own_key


class BoundHandler:
    name = "bound"

    def handle(self, state: State) -> None:
        namespace, name = holder({"spec": state.spec})
        vmmac = state.get(VMMACS, name, namespace) if name else None
        if vmmac is None:
            state.ctx.kube.delete_if_exists(LEASES, state.name)
            state.stop = True
            return
        address = (vmmac.get("status") or {}).get("address")
        if address and address != allocator.address_of_lease(state.name):
            state.status.pop("phase", None)
            conditions.set_condition(state.status, C.Type.BOUND, False, conditions.UNKNOWN,
                                     f"VirtualMachineMACAddress {namespace}/{name} holds {address}, "
                                     f"not the address this lease is named after", generation=state.generation)
            return
        state.status["phase"] = Phase.BOUND
        conditions.set_condition(state.status, C.Type.BOUND, True, C.BoundReason.BOUND,
                                 f"bound to {namespace}/{name}", generation=state.generation)
        state.status["observedGeneration"] = state.generation


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    def lease_of_vmmac(vmmac: dict[str, Any]) -> list[tuple[str, str]]:
        address = (vmmac.get("status") or {}).get("address")
        return [("", allocator.lease_name(address))] if address else []

    # a lease reads of its MAC address claim its address, existence and deletion
    return (Reconciler(ctx, LEASES, [BoundHandler()], failure_condition=C.Type.BOUND, drop_echoes=True),
            [Watch(LEASES, lambda o: [own_key(o)]), Watch(VMMACS, lease_of_vmmac, relevant=fields_changed(("status", "address")))])
