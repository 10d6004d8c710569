"""What a VirtualMachine needs before it can run, one handler each:
class and sizing policy, IP address, block devices, provisioning (cloud-init). Each sets
its condition; a VM whose prerequisites are not met stays Pending and says why."""

from __future__ import annotations

import base64
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    VIRTUAL_DISKS,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINE_CLASSES,
    VIRTUAL_MACHINE_IP_ADDRESSES,
)
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.common.kube.client import SECRETS, KubeError
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vmclass.sizing import violations

USER_DATA_LIMIT = 2048
CLOUD_INIT_SECRET_TYPE = "provisioning.virtualization.deckhouse.io/cloud-init"


def _set(state: State, type_: str, ok: bool, reason: str, message: str) -> None:
    conditions.set_condition(state.status, type_, ok, reason, message, generation=state.generation)


class ClassHandler:
    name = "class"
    condition = C.Type.CLASS_READY

    def handle(self, state: State) -> None:
        name = state.spec.get("virtualMachineClassName", "")
        cls = state.get(VIRTUAL_MACHINE_CLASSES, name)
        if cls is None:
            _set(state, C.Type.CLASS_READY, False, C.ClassReadyReason.CLASS_NOT_READY,
                 f"VirtualMachineClass {name!r} does not exist: specify an existing VirtualMachineClass in "
                 "spec.virtualMachineClassName, or create it")
            _set(state, C.Type.SIZING_POLICY_MATCHED, False,
                 C.SizingPolicyMatchedReason.VIRTUAL_MACHINE_CLASS_NOT_EXISTS, f"VirtualMachineClass {name!r} does not exist: specify an existing class in "
                 "spec.virtualMachineClassName")
            return
        if cls["metadata"].get("deletionTimestamp"):
            _set(state, C.Type.CLASS_READY, False, C.ClassReadyReason.CLASS_NOT_READY,
                 f"VirtualMachineClass {name!r} is being deleted: specify another class in spec.virtualMachineClassName")
            _set(state, C.Type.SIZING_POLICY_MATCHED, False,
                 C.SizingPolicyMatchedReason.VIRTUAL_MACHINE_CLASS_TERMINATING,
                 f"VirtualMachineClass {name!r} is being deleted: specify another class in spec.virtualMachineClassName")
            return
        _set(state, C.Type.CLASS_READY, True, C.ClassReadyReason.CLASS_READY, "")
        broken = violations(name, state.spec, (cls.get("spec") or {}).get("sizingPolicies") or [])
        if broken:
            _set(state, C.Type.SIZING_POLICY_MATCHED, False, C.SizingPolicyMatchedReason.SIZING_POLICY_NOT_MATCHED,
                 "; ".join(broken))
        else:
            conditions.remove(state.status, C.Type.SIZING_POLICY_MATCHED)


class IPAddressHandler:
    """The VM's address claim: the named VirtualMachineIPAddress, or an Auto one it owns."""

    name = "ipam"
    condition = C.Type.IP_ADDRESS_READY

    def handle(self, state: State) -> None:
        wanted = state.spec.get("virtualMachineIPAddressName") or state.status.get("virtualMachineIPAddressName")
        vmip = state.get(VIRTUAL_MACHINE_IP_ADDRESSES, wanted) if wanted else None
        if vmip is None and not state.spec.get("virtualMachineIPAddressName") and not state.deleting:
            wanted = state.name
            vmip = state.get(VIRTUAL_MACHINE_IP_ADDRESSES, wanted)
            if vmip is None:
                try:
                    vmip = state.ctx.kube.create(VIRTUAL_MACHINE_IP_ADDRESSES, {
                        "apiVersion": VIRTUAL_MACHINE_IP_ADDRESSES.api_version,
                        "kind": VIRTUAL_MACHINE_IP_ADDRESSES.kind,
                        "metadata": {"name": wanted, "namespace": state.namespace,
                                     "ownerReferences": [state.owner_ref()]},
                        "spec": {"type": "Auto"}})
                except KubeError as exc:
                    if not exc.already_exists:
                        raise
        state.status["virtualMachineIPAddressName"] = wanted
        address = ((vmip or {}).get("status") or {}).get("address")
        phase = ((vmip or {}).get("status") or {}).get("phase")
        if vmip is None:
            _set(state, C.Type.IP_ADDRESS_READY, False, C.IPAddressReadyReason.IP_ADDRESS_NOT_READY,
                 f"VirtualMachineIPAddress {wanted!r} does not exist: create it in this namespace, or clear "
                 "spec.virtualMachineIPAddressName to get an address allocated automatically")
        elif not address or phase not in ("Bound", "Attached"):
            _set(state, C.Type.IP_ADDRESS_READY, False, C.IPAddressReadyReason.IP_ADDRESS_NOT_ASSIGNED,
                 f"waiting for VirtualMachineIPAddress {wanted!r} to be bound")
        else:
            state.status["ipAddress"] = address
            _set(state, C.Type.IP_ADDRESS_READY, True, C.IPAddressReadyReason.IP_ADDRESS_READY, "")


def resolve_device(state: State, ref: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The object behind a block device reference and why it is not usable ("" when it is)."""
    kind, name = ref.get("kind"), ref.get("name", "")
    if kind == "VirtualDisk":
        obj = state.get(VIRTUAL_DISKS, name)
        if obj is None:
            return None, f"VirtualDisk {name!r} does not exist: create it, or remove it from spec.blockDeviceRefs"
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Ready", "WaitForFirstConsumer", "Resizing"):
            return obj, ""
        return obj, f"VirtualDisk {name!r} is {phase or 'Pending'}"
    res = VIRTUAL_IMAGES if kind == "VirtualImage" else CLUSTER_VIRTUAL_IMAGES
    obj = state.get(res, name)
    if obj is None:
        return None, f"{kind} {name!r} does not exist: create it, or remove it from spec.blockDeviceRefs"
    if (obj.get("status") or {}).get("phase") != "Ready":
        return obj, f"{kind} {name!r} is {(obj.get('status') or {}).get('phase') or 'Pending'}"
    return obj, ""


class BlockDevicesHandler:
    name = "blockdevices"
    condition = C.Type.BLOCK_DEVICES_READY

    def handle(self, state: State) -> None:
        refs = list(state.spec.get("blockDeviceRefs") or [])
        problems: list[str] = []
        waiting_for_first_consumer = False
        out: list[dict[str, Any]] = []
        for i, ref in enumerate(refs):
            missing = [f for f in ("kind", "name") if not ref.get(f)]
            if missing:  # DVP's schema lets an entry through without them; nothing to resolve
                problems.append(f"spec.blockDeviceRefs[{i}] has no {' and no '.join(missing)}: give each entry a "
                                "kind (VirtualDisk, VirtualImage or ClusterVirtualImage) and the name of that object")
                continue
            obj, why = resolve_device(state, ref)
            if why:
                problems.append(why)
            status = (obj or {}).get("status") or {}
            size = status.get("capacity") or (status.get("size") or {}).get("unpacked") or ""
            if (obj or {}).get("kind") == "VirtualDisk" and status.get("phase") == "WaitForFirstConsumer":
                waiting_for_first_consumer = True
            out.append({"kind": ref.get("kind"), "name": ref.get("name"), "size": size, "bootOrder": i + 1,
                        "attached": False})
        own = {(d["kind"], d["name"]) for d in out}
        for vmbda in state.lookup(indexes.ATTACHMENTS_BY_VM, f"{state.namespace}/{state.name}"):
            if vmbda["metadata"].get("deletionTimestamp"):
                continue
            ref = (vmbda.get("spec") or {}).get("blockDeviceRef") or {}
            if (ref.get("kind"), ref.get("name")) in own:
                continue
            obj, why = resolve_device(state, ref)
            if why:  # a hot-plug waits for its device; it never holds the machine back
                continue
            status = (obj or {}).get("status") or {}
            out.append({"kind": ref.get("kind"), "name": ref.get("name"), "hotplugged": True, "attached": False,
                        "virtualMachineBlockDeviceAttachmentName": vmbda["metadata"]["name"],
                        "size": status.get("capacity") or (status.get("size") or {}).get("unpacked") or ""})
        prev = {(d.get("kind"), d.get("name")): d for d in state.status.get("blockDeviceRefs") or []}
        for d in out:
            d["attached"] = bool(prev.get((d["kind"], d["name"]), {}).get("attached"))
            if prev.get((d["kind"], d["name"]), {}).get("target"):
                d["target"] = prev[(d["kind"], d["name"])]["target"]
        state.status["blockDeviceRefs"] = out
        state.status["blockDevicesCount"] = len(state.status["blockDeviceRefs"])
        if problems:
            _set(state, C.Type.BLOCK_DEVICES_READY, False, C.BlockDevicesReadyReason.BLOCK_DEVICES_NOT_READY,
                 "; ".join(problems))
        elif waiting_for_first_consumer:
            _set(state, C.Type.BLOCK_DEVICES_READY, False,
                 C.BlockDevicesReadyReason.WAITING_FOR_PROVISIONING_TO_PVC,
                 "disks are provisioned on the node the machine is placed on")
        else:
            _set(state, C.Type.BLOCK_DEVICES_READY, True, C.BlockDevicesReadyReason.BLOCK_DEVICES_READY, "")


def user_data(state: State) -> tuple[str | None, str]:
    """The cloud-init user data and a problem ("" when fine)."""
    prov = state.spec.get("provisioning") or {}
    kind = prov.get("type")
    if not prov:
        return None, ""
    if kind == "UserData":
        data = prov.get("userData") or ""
        if len(data) > USER_DATA_LIMIT:
            return None, f"spec.provisioning.userData is {len(data)} bytes; the limit is {USER_DATA_LIMIT} " \
                         f"(put it in a Secret and use UserDataRef)"
        return data, ""
    if kind == "UserDataRef":
        ref = prov.get("userDataRef") or {}
        secret = state.ctx.kube.get_or_none(SECRETS, ref.get("name", ""), state.namespace)
        if secret is None:
            return None, (f"Secret {ref.get('name')!r} does not exist: create it in this namespace with a userData "
                          "key, or fix spec.provisioning.userDataRef.name")
        raw = (secret.get("data") or {}).get("userData")
        if raw is None:
            return None, f"Secret {ref.get('name')!r} has no key userData: add the cloud-init user data under that key"
        return base64.b64decode(raw).decode(errors="replace"), ""
    return None, f"provisioning type {kind!r} is not supported on this platform"


class ProvisioningHandler:
    name = "provisioning"
    condition = C.Type.PROVISIONING_READY

    def handle(self, state: State) -> None:
        _data, problem = user_data(state)
        if problem:
            _set(state, C.Type.PROVISIONING_READY, False, C.ProvisioningReadyReason.PROVISIONING_NOT_READY, problem)
        else:
            _set(state, C.Type.PROVISIONING_READY, True, C.ProvisioningReadyReason.PROVISIONING_READY, "")
