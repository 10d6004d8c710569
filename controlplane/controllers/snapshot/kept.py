"""What a VirtualMachineSnapshot keeps besides its disk snapshots, as DVP keeps it: one Secret
(`d8v-vms-<snapshot>-<uid>`, type `virtualmachine.virtualization.deckhouse.io/snapshot`, owned by
the snapshot) whose keys hold JSON manifests — `vm` (the VirtualMachine), `vmip` (its
VirtualMachineIPAddress, per `keepIPAddress`), `vmmacs` (the MAC addresses of its additional
networks), `provisioner` (the Secret its provisioning refers to) and `vmbdas` (the
VirtualMachineBlockDeviceAttachments of the machine) — and the `status.resources` list naming
them. A restore or a clone reads the manifests back with `read_kept`.

`keepIPAddress` follows DVP's table: `Always` turns an automatic address into a static one of the
address the VM has (so a restore gets it back); `Never` keeps a static address as it is and leaves
an automatic one out when the VM did not name its address.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from controlplane.api.resources import (
    VIRTUAL_DISKS,
    VIRTUAL_MACHINE_IP_ADDRESSES,
    VIRTUAL_MACHINE_MAC_ADDRESSES,
)
from controlplane.api.snapshots import KeepIPAddress
from controlplane.common.kube.client import SECRETS
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.state import State

SECRET_TYPE = "virtualmachine.virtualization.deckhouse.io/snapshot"
KEYS = ("vm", "vmip", "vmmacs", "provisioner", "vmbdas")
_META_KEPT = ("name", "namespace", "labels", "annotations")


def secret_name(snapshot_name: str, uid: str) -> str:
    return f"d8v-vms-{snapshot_name}-{uid}"[:253]


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    """A manifest as it can be created again: metadata reduced to name, labels, annotations."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k in _META_KEPT}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": meta,
            "spec": obj.get("spec") or {}, **({"status": obj["status"]} if obj.get("status") else {})}


def _ref(obj: dict[str, Any]) -> dict[str, str]:
    return {"apiVersion": str(obj.get("apiVersion")), "kind": str(obj.get("kind")), "name": obj["metadata"]["name"]}


def collect(state: State, vm: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(Secret data as JSON values, status.resources) for `vm` under this snapshot's spec."""
    data: dict[str, Any] = {"vm": _clean(vm)}
    resources = [_ref(vm)]
    keep = state.spec.get("keepIPAddress") or KeepIPAddress.ALWAYS
    vm_spec, vm_status = vm.get("spec") or {}, vm.get("status") or {}
    vmip_name = vm_status.get("virtualMachineIPAddressName") or vm_spec.get("virtualMachineIPAddressName")
    vmip = state.get(VIRTUAL_MACHINE_IP_ADDRESSES, vmip_name) if vmip_name else None
    if vmip is not None:
        kept = _clean(vmip)
        kept.pop("status", None)
        if keep == KeepIPAddress.ALWAYS and kept["spec"].get("type") != "Static":
            kept["spec"] = {**kept["spec"], "type": "Static",
                            "staticIP": (vmip.get("status") or {}).get("address", "")}
        if keep == KeepIPAddress.ALWAYS or kept["spec"].get("type") == "Static" \
                or vm_spec.get("virtualMachineIPAddressName"):
            data["vmip"] = kept
        if keep == KeepIPAddress.ALWAYS:
            resources.append(_ref(vmip))
    macs = []
    for net in (vm_status.get("networks") or []) if vm_spec.get("networks") else []:
        if net.get("type") == "Main" or not net.get("virtualMachineMACAddressName"):
            continue
        mac = state.get(VIRTUAL_MACHINE_MAC_ADDRESSES, net["virtualMachineMACAddressName"])
        if mac is not None:
            macs.append(_clean(mac))
            resources.append(_ref(mac))
    if macs:
        data["vmmacs"] = macs
    prov = vm_spec.get("provisioning") or {}
    ref = prov.get("userDataRef") or prov.get("sysprepRef") or {}
    if ref.get("name"):
        secret = state.get(SECRETS, ref["name"])
        if secret is not None:
            data["provisioner"] = {"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {k: v for k, v in secret["metadata"].items() if k in _META_KEPT},
                                   "type": secret.get("type"), "data": secret.get("data") or {}}
            resources.append({"apiVersion": "v1", "kind": "Secret", "name": ref["name"]})
    for bdr in vm_status.get("blockDeviceRefs") or vm_spec.get("blockDeviceRefs") or []:
        if bdr.get("kind") == "VirtualDisk" and bdr.get("name"):
            disk = state.get(VIRTUAL_DISKS, bdr["name"])
            resources.append({"apiVersion": VIRTUAL_DISKS.api_version, "kind": "VirtualDisk", "name": bdr["name"]})
            if disk is not None:
                data.setdefault("vds", []).append(_clean(disk))
    vmbdas = [_clean(b) for b in state.lookup(indexes.ATTACHMENTS_BY_VM, f"{state.namespace}/{vm['metadata']['name']}")]
    if vmbdas:
        data["vmbdas"] = vmbdas
        resources += [{"apiVersion": b["apiVersion"], "kind": b["kind"], "name": b["metadata"]["name"]} for b in vmbdas]
    return data, resources


def secret_body(state: State, name: str, data: dict[str, Any]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(json.dumps(v, sort_keys=True).encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": name, "namespace": state.namespace, "ownerReferences": [state.owner_ref()]},
            "data": encoded}


def read_kept(secret: dict[str, Any]) -> dict[str, Any]:
    """The manifests a snapshot's Secret holds, by key."""
    return {k: json.loads(base64.b64decode(v)) for k, v in (secret.get("data") or {}).items()}
