"""The VM side of MAC IPAM (vm/mac.py), table-driven: each interface's VirtualMachineMACAddress
(the named one, or an automatic one the VM owns), `status.networks[].macAddress`, and what
VirtualMachineMACAddressReady says when a claim is missing, taken or unbound."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINES
from controlplane.api.resources import VIRTUAL_MACHINE_MAC_ADDRESSES as VMMACS
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vm.mac import MACAddressHandler, mac_of_main
from tests.unit.controllers.test_mac_addresses import Store, _ctx


def _claim(name: str, *, address: str = "", bound: bool = True, user: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"address": address} if address else {}
    conditions.set_condition(status, "Bound", bound, "Bound" if bound else "VirtualMachineMACAddressLeaseAlreadyExists",
                             "" if bound else "MAC address x is already leased to VirtualMachineMACAddress default/a")
    if user:
        status["virtualMachineName"] = user
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {}, "status": status}


def _vm_state(store: Store, networks: list[dict[str, Any]] | None) -> State:
    ctx = _ctx(store)
    ctx.informers[INSTANCES] = store.cache(INSTANCES)
    spec: dict[str, Any] = {"networks": networks} if networks is not None else {}
    vm = {"apiVersion": VIRTUAL_MACHINES.api_version, "kind": VIRTUAL_MACHINES.kind,
          "metadata": {"name": "vm", "namespace": "default", "uid": "u1", "generation": 2}, "spec": spec}
    state = State(ctx, VIRTUAL_MACHINES, vm)
    MACAddressHandler().handle(state)
    return state


def test_an_interface_without_a_name_gets_an_owned_claim() -> None:
    store = Store()
    state = _vm_state(store, None)
    created = store.objects[(VMMACS.plural, "default", "vm")]
    assert created["metadata"]["ownerReferences"][0]["name"] == "vm" and created["spec"] == {}
    assert state.status["networks"] == [{"type": "Main", "virtualMachineMACAddressName": "vm"}]
    assert not conditions.is_true(state.status, C.Type.MAC_ADDRESS_READY)
    assert mac_of_main(state) is None


def test_a_running_instance_keeps_its_mac_when_its_claim_is_made() -> None:
    store = Store()
    store.objects[(INSTANCES.plural, "default", "vm")] = {"spec": {"nics": [{"mac": "52:54:00:aa:bb:cc"}]}}
    _vm_state(store, None)
    assert store.objects[(VMMACS.plural, "default", "vm")]["spec"] == {"address": "52:54:00:aa:bb:cc"}


# id, claims present, networks -> ready, MAC of the first interface, words in the message
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None, bool, str | None, list[str]]] = [
    ("bound-auto", [_claim("vm", address="02:d8:76:00:00:01")], None, True, "02:d8:76:00:00:01", []),
    ("named-missing", [], [{"type": "Main", "virtualMachineMACAddressName": "mine"}], False, None,
     ["'mine' does not exist", "spec.networks[0].virtualMachineMACAddressName"]),
    ("named-used-elsewhere", [_claim("mine", address="aa:bb:cc:00:00:01", user="other")],
     [{"type": "Main", "virtualMachineMACAddressName": "mine"}], False, None, ["attached to VirtualMachine 'other'"]),
    ("named-unbound", [_claim("mine", bound=False)], [{"type": "Main", "virtualMachineMACAddressName": "mine"}],
     False, None, ["not bound", "already leased"]),
    ("two-interfaces", [_claim("vm", address="02:d8:76:00:00:01"), _claim("vm-1", address="02:d8:76:00:00:02")],
     [{"type": "Main"}, {"type": "Network", "name": "lan"}], True, "02:d8:76:00:00:01", []),
]


@pytest.mark.parametrize(("claims", "networks", "ready", "mac", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_mac_address_ready(claims: list[dict[str, Any]], networks: list[dict[str, Any]] | None, ready: bool,
                           mac: str | None, words: list[str]) -> None:
    store = Store()
    for claim in claims:
        store.objects[(VMMACS.plural, "default", claim["metadata"]["name"])] = claim
    state = _vm_state(store, networks)
    cond = conditions.get(state.status, C.Type.MAC_ADDRESS_READY) or {}
    assert (cond.get("status") == "True") is ready
    assert cond.get("observedGeneration") == 2
    assert mac_of_main(state) == mac
    for word in words:
        assert word in cond["message"]
    if len(state.status["networks"]) > 1:
        assert state.status["networks"][1]["macAddress"] == "02:d8:76:00:00:02"
        assert state.status["networks"][1]["name"] == "lan"
