"""The VM's MAC addresses, as DVP binds them: each network interface of the VM (`spec.networks`,
or the Main network alone) has a VirtualMachineMACAddress — the one the interface names in
`virtualMachineMACAddressName`, or an automatic one the VM owns (so deleting the VM deletes it
and frees its lease). `status.networks[]` shows each interface with its `macAddress`, and the
instance's NICs use those addresses. VirtualMachineMACAddressReady says what is missing: a
claim that does not exist, one attached to another VM, or one not bound (with its own reason,
e.g. the address is leased to someone else)."""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import INSTANCES
from controlplane.api.resources import VIRTUAL_MACHINE_MAC_ADDRESSES as VMMACS
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.api.v1alpha2 import VMMACCondition
from controlplane.common.kube.client import KubeError
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.state import State


def _current_mac(state: State, i: int) -> str:
    """The MAC interface `i` of an existing instance already has (kept when its claim is made)."""
    nics = ((state.get(INSTANCES, state.name) or {}).get("spec") or {}).get("nics") or []
    return str(nics[i].get("mac") or "") if i < len(nics) else ""


def _ensure(state: State, i: int, name: str) -> dict[str, Any] | None:
    vmmac = state.get(VMMACS, name)
    if vmmac is not None or state.deleting:
        return vmmac
    spec = {"address": mac} if (mac := _current_mac(state, i)) else {}
    try:
        created: dict[str, Any] = state.ctx.kube.create(VMMACS, {
            "apiVersion": VMMACS.api_version, "kind": VMMACS.kind,
            "metadata": {"name": name, "namespace": state.namespace, "ownerReferences": [state.owner_ref()]},
            "spec": spec})
        return created
    except KubeError as exc:
        if not exc.already_exists:
            raise
        return state.ctx.kube.get_or_none(VMMACS, name, state.namespace)


def _problem(state: State, i: int, iface: dict[str, Any], name: str, vmmac: dict[str, Any] | None) -> str | None:
    if vmmac is None:
        return (f"VirtualMachineMACAddress {name!r} does not exist: create it in this namespace, or remove "
                f"spec.networks[{i}].virtualMachineMACAddressName to get a MAC address allocated automatically")
    status = vmmac.get("status") or {}
    user = status.get("virtualMachineName")
    if user and user != state.name:
        return (f"VirtualMachineMACAddress {name!r} is attached to VirtualMachine {user!r}: remove it from that "
                f"VirtualMachine, or name another one in spec.networks[{i}].virtualMachineMACAddressName")
    if not status.get("address") or not conditions.is_true(status, VMMACCondition.Type.BOUND):
        why = (conditions.get(status, VMMACCondition.Type.BOUND) or {}).get("message") or "not bound yet"
        return f"VirtualMachineMACAddress {name!r} is not bound: {why}"
    return None


class MACAddressHandler:
    name = "mac"
    condition = C.Type.MAC_ADDRESS_READY

    def handle(self, state: State) -> None:
        vm = {"metadata": {"name": state.name}, "spec": state.spec}
        networks: list[dict[str, Any]] = []
        problems: list[str] = []
        for i, iface in enumerate(indexes.vm_interfaces(vm)):
            name = indexes.vm_mac_address_name(vm, i, iface)
            vmmac = state.get(VMMACS, name) if iface.get("virtualMachineMACAddressName") else _ensure(state, i, name)
            entry: dict[str, Any] = {k: iface[k] for k in ("id", "type", "name") if k in iface}
            entry["virtualMachineMACAddressName"] = name
            problem = _problem(state, i, iface, name, vmmac)
            if problem is None:
                entry["macAddress"] = ((vmmac or {}).get("status") or {})["address"]
            else:
                problems.append(problem)
            networks.append(entry)
        state.status["networks"] = networks
        if problems:
            conditions.set_condition(state.status, C.Type.MAC_ADDRESS_READY, False,
                                     C.MACAddressReadyReason.MAC_ADDRESS_NOT_READY, "; ".join(problems),
                                     generation=state.generation)
        else:
            conditions.set_condition(state.status, C.Type.MAC_ADDRESS_READY, True,
                                     C.MACAddressReadyReason.MAC_ADDRESS_READY, "", generation=state.generation)


def mac_of_main(state: State) -> str | None:
    """The MAC of the VM's first interface, once its VirtualMachineMACAddress is bound."""
    networks = state.status.get("networks") or []
    mac = networks[0].get("macAddress") if networks else None
    return str(mac) if mac else None
