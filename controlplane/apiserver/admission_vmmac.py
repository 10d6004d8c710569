"""DVP's validating admission for VirtualMachineMACAddresses, done in the API server after
schema validation (DVP's virtualization-controller runs it as a webhook):

- create: a `spec.address` another VirtualMachineMACAddress already holds a lease of is refused,
  naming the holder (the lease, named after the address, stays the lock the controller takes;
  this check only answers early);
- update: the address of a Bound VirtualMachineMACAddress cannot change.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.apiserver.datastore import Datastore
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.resources import ResourceInfo

GROUP = "virtualization.deckhouse.io"
LEASES = f"{GROUP}/virtualmachinemacaddressleases"
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")


def lease_name(address: str) -> str:
    """DVP's lease name of a MAC address (`mac-aa-bb-cc-dd-ee-ff`)."""
    return "mac-" + address.strip().lower().replace(":", "-")


def _bound(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Bound" and c.get("status") == "True" for c in conds)


def validate(store: Datastore, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    if info.group != GROUP or info.kind != "VirtualMachineMACAddress":
        return []
    address = str((obj.get("spec") or {}).get("address") or "")
    if old is not None:
        before = str((old.get("spec") or {}).get("address") or "")
        if _bound(old) and before != address:
            return [Cause("spec.address", f'Invalid value: "{address}": the VirtualMachineMACAddress is Bound to '
                          f"{before or 'its allocated address'}; its MAC address cannot be changed (create another "
                          "VirtualMachineMACAddress instead)", "FieldValueForbidden")]
        return []
    if not address or not _MAC.match(address):
        return []
    lease = store.get(LEASES, f"/{lease_name(address)}")
    ref = ((lease.obj.get("spec") or {}).get("virtualMachineMACAddressRef") or {}) if lease is not None else {}
    meta = obj.get("metadata") or {}
    if ref.get("name") and (ref.get("namespace"), ref.get("name")) != (meta.get("namespace"), meta.get("name")):
        return [Cause("spec.address", f'Invalid value: "{address}": the MAC address has already been allocated by '
                      f"VirtualMachineMACAddress/{ref['name']} in ns/{ref.get('namespace')}: choose another address, "
                      "or leave spec.address empty to get one allocated", "FieldValueDuplicate")]
    return []
