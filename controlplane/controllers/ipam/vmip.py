"""The VirtualMachineIPAddress reconciler. Handlers in order:
1. deletion: the lease is released (it stays held for the namespace for the hold time),
   then the finalizer goes;
2. binding: Static addresses are checked against `virtualMachineCIDRs`; Auto ones get the
   lowest free address; the claim is the creation of the lease (its name is the address, so
   two claims of one address end with one winner);
3. attachment: which VirtualMachine uses the address;
4. phase: Pending -> Bound -> Attached."""

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
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import VirtualMachineIPAddressPhase as Phase
from controlplane.api.v1alpha2 import VMIPCondition as C
from controlplane.common.kube.client import KubeError
from controlplane.controllers.ipam import allocator, binding
from controlplane.controllers.names import ANNOTATION_RELEASED_AT, FINALIZER_VMIP
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, fields_changed, own_key


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def held_for(lease: dict[str, Any], hold_seconds: float) -> str | None:
    """The namespace a released lease is still reserved for, or None once the hold is over."""
    ref = (lease.get("spec") or {}).get("virtualMachineIPAddressRef") or {}
    released = (lease["metadata"].get("annotations") or {}).get(ANNOTATION_RELEASED_AT)
    if ref.get("name") or not released:
        return None
    at = dt.datetime.fromisoformat(released.replace("Z", "+00:00"))
    if (dt.datetime.now(dt.UTC) - at).total_seconds() >= hold_seconds:
        return None
    return str(ref.get("namespace") or "")


def release(ctx: Context, lease_name: str, *, namespace: str, vmip_name: str) -> None:
    lease = ctx.cached(LEASES, "", lease_name)
    ref = ((lease or {}).get("spec") or {}).get("virtualMachineIPAddressRef") or {}
    if lease is None or ref.get("name") != vmip_name or ref.get("namespace") != namespace:
        return
    ctx.kube.patch(LEASES, lease_name, {
        "metadata": {"annotations": {ANNOTATION_RELEASED_AT: _now()},
                     "resourceVersion": lease["metadata"]["resourceVersion"]},
        "spec": {"virtualMachineIPAddressRef": {"name": "", "namespace": namespace}}})


class DeletionHandler:
    name = "deletion"

    def handle(self, state: State) -> None:
        if not state.deleting:
            state.add_finalizer(FINALIZER_VMIP)
            return
        address = state.status.get("address")
        if address:
            release(state.ctx, allocator.lease_name(address), namespace=state.namespace, vmip_name=state.name)
        state.remove_finalizer(FINALIZER_VMIP)
        state.stop = True


class BindingHandler:
    name = "binding"

    def __init__(self, lowest_free: allocator.LowestFree | None = None) -> None:
        self.lowest_free = lowest_free or allocator.LowestFree()

    def _mine(self, state: State, lease: dict[str, Any] | None) -> bool:
        ref = ((lease or {}).get("spec") or {}).get("virtualMachineIPAddressRef") or {}
        return ref.get("name") == state.name and ref.get("namespace") == state.namespace

    def _claim(self, state: State, address: str) -> str | None:
        """Create or re-take the lease of `address`; None on success, else why not."""
        ctx = state.ctx
        name = allocator.lease_name(address)
        lease = state.get(LEASES, name)
        if self._mine(state, lease):
            return None
        if lease is not None:
            holder = held_for(lease, ctx.settings.ip_lease_hold_seconds)
            ref = (lease.get("spec") or {}).get("virtualMachineIPAddressRef") or {}
            if ref.get("name"):
                return f"address {address} is leased to {ref.get('namespace')}/{ref.get('name')}"
            if holder is not None and holder != state.namespace:
                return f"address {address} was released by namespace {holder} and is held for it for a while"
            ctx.kube.replace(LEASES, {**lease, "metadata": {**lease["metadata"], "annotations": {
                k: v for k, v in (lease["metadata"].get("annotations") or {}).items() if k != ANNOTATION_RELEASED_AT}},
                "spec": {"virtualMachineIPAddressRef": {"name": state.name, "namespace": state.namespace}}})
            return None
        try:
            ctx.kube.create(LEASES, {
                "apiVersion": LEASES.api_version, "kind": LEASES.kind, "metadata": {"name": name},
                "spec": {"virtualMachineIPAddressRef": {"name": state.name, "namespace": state.namespace}}})
        except KubeError as exc:
            if exc.already_exists:
                return f"address {address} was just taken; retrying"
            raise
        return None

    def handle(self, state: State) -> None:
        ctx = state.ctx
        networks = ctx.settings.networks()
        spec = state.spec
        address = state.status.get("address")
        if spec.get("type") == "Static":
            wanted = spec.get("staticIP") or ""
            if allocator.usable(wanted, networks) is None:
                conditions.set_condition(state.status, C.Type.BOUND, False, C.BoundReason.OUT_OF_THE_VALID_RANGE,
                                         f"{wanted!r} is not a usable address of virtualMachineCIDRs "
                                         f"({', '.join(ctx.settings.virtual_machine_cidrs)})",
                                         generation=state.generation)
                state.status.pop("address", None)
                return
            if address and address != wanted:
                release(ctx, allocator.lease_name(address), namespace=state.namespace, vmip_name=state.name)
            address = wanted
        elif not address or allocator.usable(address, networks) is None:
            def taken(a: str) -> bool:
                lease = state.ctx.cached(LEASES, "", allocator.lease_name(a))  # the lease name is the IP
                return lease is not None and not self._mine(state, lease)

            address = self.lowest_free.pick(networks, taken)
            if address is None:
                conditions.set_condition(state.status, C.Type.BOUND, False, C.BoundReason.LEASE_NOT_READY,
                                         "no free address left in virtualMachineCIDRs", generation=state.generation)
                state.requeue(state.ctx.runtime.requeue_no_capacity)
                return
        binding.record_claim(state, address, self._claim(state, address), lease_name=allocator.lease_name(address),
                             conflict_reason=C.BoundReason.LEASE_ALREADY_EXISTS, keep_address=spec.get("type") == "Static")


def user_of(state: State) -> dict[str, Any] | None:
    for vm in state.lookup(indexes.VMS_BY_IP_ADDRESS, f"{state.namespace}/{state.name}"):
        return vm
    owner = next((r for r in state.meta.get("ownerReferences") or [] if r.get("kind") == "VirtualMachine"), None)
    return state.get(VIRTUAL_MACHINES, owner["name"]) if owner else None


class AttachmentHandler(binding.AttachmentHandler):
    def __init__(self) -> None:
        super().__init__(user_of, what="address")


PhaseHandler = binding.PhaseHandler
phase_of = binding.phase_of


# an address that leaves Bound/Attached for Pending lost its lease: a Warning
PHASE_EVENTS = PhaseEvents(warning=frozenset(), lost=frozenset({Phase.BOUND.value, Phase.ATTACHED.value}))


LEASE_FIELDS_READ = fields_changed(("spec",), ("metadata", "annotations"))
"""What the binding reads of a lease (whose it is, since when released), not its status."""


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    lowest_free = allocator.LowestFree()
    ctx.informer(LEASES).add_handler(lambda typ, _obj, _old: lowest_free.forget() if typ == "DELETED" else None)
    reconciler = Reconciler(ctx, VMIPS, [DeletionHandler(), BindingHandler(lowest_free), AttachmentHandler(),
                                         PhaseHandler()],
                            failure_condition=C.Type.BOUND,
                            after=[PHASE_EVENTS], drop_echoes=True)

    def vmip_of_lease(lease: dict[str, Any]) -> list[tuple[str, str]]:
        ref = (lease.get("spec") or {}).get("virtualMachineIPAddressRef") or {}
        return [(ref["namespace"], ref["name"])] if ref.get("name") and ref.get("namespace") else []

    def vmips_of_vm(vm: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vm["metadata"].get("namespace", "")
        names = {(vm.get("spec") or {}).get("virtualMachineIPAddressName"),
                 (vm.get("status") or {}).get("virtualMachineIPAddressName")}
        return [(ns, n) for n in names if n]

    return reconciler, [Watch(VMIPS, lambda o: [own_key(o)]), Watch(LEASES, vmip_of_lease, relevant=LEASE_FIELDS_READ),
                        Watch(VIRTUAL_MACHINES, vmips_of_vm, relevant=fields_changed(  # which address a VM names
                            ("spec", "virtualMachineIPAddressName"), ("status", "virtualMachineIPAddressName")))]
