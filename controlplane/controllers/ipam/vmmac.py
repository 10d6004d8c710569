"""The VirtualMachineMACAddress reconciler. Handlers in order:
1. deletion: its lease is deleted (DVP keeps no hold on MAC addresses), then the finalizer goes;
2. binding: a static `spec.address` is claimed as is; an automatic one gets a free address
   under the platform's MAC prefix; the claim is the creation of the lease (its name is the
   address, so two claims of one address end with one winner and the other refused with
   VirtualMachineMACAddressLeaseAlreadyExists);
3. attachment: which VirtualMachine uses the address;
4. phase: Pending -> Bound -> Attached."""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_MACHINE_MAC_ADDRESS_LEASES as LEASES
from controlplane.api.resources import VIRTUAL_MACHINE_MAC_ADDRESSES as VMMACS
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import VMMACCondition as C
from controlplane.common.kube.client import KubeError
from controlplane.controllers.ipam import binding
from controlplane.controllers.ipam import mac_allocator as allocator
from controlplane.controllers.names import FINALIZER_VMMAC
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, fields_changed, own_key


def holder(lease: dict[str, Any] | None) -> tuple[str, str]:
    ref = ((lease or {}).get("spec") or {}).get("virtualMachineMACAddressRef") or {}
    return str(ref.get("namespace") or ""), str(ref.get("name") or "")


def release(ctx: Context, address: str, *, namespace: str, name: str) -> None:
    """Delete the lease of `address` if this VirtualMachineMACAddress holds it."""
    lease_name = allocator.lease_name(address)
    if holder(ctx.cached(LEASES, "", lease_name)) == (namespace, name):
        ctx.kube.delete_if_exists(LEASES, lease_name)


class DeletionHandler:
    name = "deletion"

    def handle(self, state: State) -> None:
        if not state.deleting:
            state.add_finalizer(FINALIZER_VMMAC)
            return
        address = state.status.get("address")
        if address:
            release(state.ctx, address, namespace=state.namespace, name=state.name)
        state.remove_finalizer(FINALIZER_VMMAC)
        state.stop = True


class BindingHandler:
    name = "binding"

    def _claim(self, state: State, address: str) -> str | None:
        """Create the lease of `address`; None when it is ours, else who holds it."""
        name = allocator.lease_name(address)
        lease = state.get(LEASES, name)
        if lease is None:
            try:
                state.ctx.kube.create(LEASES, {
                    "apiVersion": LEASES.api_version, "kind": LEASES.kind, "metadata": {"name": name},
                    "spec": {"virtualMachineMACAddressRef": {"name": state.name, "namespace": state.namespace}}})
                return None
            except KubeError as exc:
                if not exc.already_exists:
                    raise
                lease = state.ctx.kube.get_or_none(LEASES, name)
        ns, owner = holder(lease)
        if (ns, owner) == (state.namespace, state.name):
            return None
        return (f"MAC address {address} is already leased to VirtualMachineMACAddress {ns}/{owner}: "
                "set another spec.address, or leave it empty to get one allocated")

    def handle(self, state: State) -> None:
        wanted = state.spec.get("address") or ""
        address = state.status.get("address")
        if wanted:
            static = allocator.normal(wanted)
            if static is None:  # the schema's pattern refuses it first; kept for objects stored before
                conditions.set_condition(state.status, C.Type.BOUND, False, C.BoundReason.LEASE_NOT_READY,
                                         f"spec.address {wanted!r} is not a MAC address (aa:bb:cc:dd:ee:ff)",
                                         generation=state.generation)
                return
            if address and address != static:
                release(state.ctx, address, namespace=state.namespace, name=state.name)
            address = static
        elif not address:
            def taken(a: str) -> bool:
                return state.ctx.cached(LEASES, "", allocator.lease_name(a)) is not None

            address = allocator.pick(state.ctx.settings.mac_address_prefix, taken)
            if address is None:
                conditions.set_condition(state.status, C.Type.BOUND, False, C.BoundReason.LEASE_NOT_READY,
                                         f"no free MAC address left under the prefix "
                                         f"{state.ctx.settings.mac_address_prefix}", generation=state.generation)
                state.requeue(state.ctx.runtime.requeue_no_capacity)
                return
        binding.record_claim(state, address, self._claim(state, address), lease_name=allocator.lease_name(address),
                             conflict_reason=C.BoundReason.LEASE_ALREADY_EXISTS, keep_address=False)


def user_of(state: State) -> dict[str, Any] | None:
    """The VM using this MAC address: the one it is attached to while that one still names it,
    else the oldest that does (a second VM naming it waits, and says so, instead of taking it)."""
    vms = state.lookup(indexes.VMS_BY_MAC_ADDRESS, f"{state.namespace}/{state.name}")
    current = state.status.get("virtualMachineName")
    for vm in vms:
        if vm["metadata"]["name"] == current:
            return vm
    return min(vms, key=lambda v: (v["metadata"].get("creationTimestamp") or "", v["metadata"]["name"]), default=None)


class AttachmentHandler(binding.AttachmentHandler):
    def __init__(self) -> None:
        super().__init__(user_of, what="MAC address")


PhaseHandler = binding.PhaseHandler
phase_of = binding.phase_of


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, VMMACS, [DeletionHandler(), BindingHandler(), AttachmentHandler(), PhaseHandler()],
                            failure_condition=C.Type.BOUND, drop_echoes=True)
    indexes.register(ctx, indexes.VMS_BY_MAC_ADDRESS)

    def vmmac_of_lease(lease: dict[str, Any]) -> list[tuple[str, str]]:
        ns, name = holder(lease)
        return [(ns, name)] if ns and name else []

    def vmmacs_of_vm(vm: dict[str, Any]) -> list[tuple[str, str]]:
        ns = vm["metadata"].get("namespace", "")
        return [(ns, key.split("/", 1)[1]) for key in indexes.VMS_BY_MAC_ADDRESS.fn(vm)]

    return reconciler, [Watch(VMMACS, lambda o: [own_key(o)]),
                        Watch(LEASES, vmmac_of_lease, relevant=fields_changed(("spec",))),  # whose it is, not its status
                        Watch(VIRTUAL_MACHINES, vmmacs_of_vm, relevant=names_changed)]


def names_changed(vm: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """`relevant` of the VM watch: which MAC addresses a VM names (not the addresses its status
    shows once they are bound), or its deletion."""
    return (old is None or set(indexes.VMS_BY_MAC_ADDRESS.fn(vm)) != set(indexes.VMS_BY_MAC_ADDRESS.fn(old))
            or fields_changed()(vm, old))
