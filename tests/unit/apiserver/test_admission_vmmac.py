"""DVP's VirtualMachineMACAddress admission: a MAC another claim holds a lease of is refused on
create, naming the field and the holder; a Bound claim's address cannot change."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver import admission_vmmac
from controlplane.apiserver.resources import ResourceInfo

from .conftest import Api

INFO = ResourceInfo(group="virtualization.deckhouse.io", version="v1alpha2", kind="VirtualMachineMACAddress",
                    plural="virtualmachinemacaddresses", singular="virtualmachinemacaddress", namespaced=True)


def _vmmac(name: str, address: str = "", *, bound: bool = False) -> dict[str, Any]:
    status = {"conditions": [{"type": "Bound", "status": "True" if bound else "False"}]}
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"address": address} if address else {},
            "status": status}


async def _lease(api: Api, address: str, holder: str) -> None:
    name = admission_vmmac.lease_name(address)
    await api.store.create(admission_vmmac.LEASES, f"/{name}", {
        "metadata": {"name": name}, "spec": {"virtualMachineMACAddressRef": {"name": holder, "namespace": "default"}}})


async def test_a_leased_mac_is_refused_on_create_naming_the_holder(api: Api) -> None:
    await _lease(api, "aa:bb:cc:00:00:01", "first")
    causes = admission_vmmac.validate(api.store, INFO, _vmmac("second", "AA-BB-CC-00-00-01"), None)
    assert [c.field for c in causes] == ["spec.address"]
    assert "VirtualMachineMACAddress/first in ns/default" in causes[0].message
    assert admission_vmmac.validate(api.store, INFO, _vmmac("first", "aa:bb:cc:00:00:01"), None) == []
    assert admission_vmmac.validate(api.store, INFO, _vmmac("third", "aa:bb:cc:00:00:02"), None) == []
    assert admission_vmmac.validate(api.store, INFO, _vmmac("auto"), None) == []


async def test_a_bound_address_cannot_change(api: Api) -> None:
    old = _vmmac("m", "aa:bb:cc:00:00:01", bound=True)
    causes = admission_vmmac.validate(api.store, INFO, _vmmac("m", "aa:bb:cc:00:00:02"), old)
    assert [c.field for c in causes] == ["spec.address"] and "cannot be changed" in causes[0].message
    assert admission_vmmac.validate(api.store, INFO, _vmmac("m", "aa:bb:cc:00:00:01"), old) == []
    pending = _vmmac("m", "aa:bb:cc:00:00:01")
    assert admission_vmmac.validate(api.store, INFO, _vmmac("m", "aa:bb:cc:00:00:02"), pending) == []
