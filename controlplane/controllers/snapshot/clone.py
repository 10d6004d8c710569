"""A new machine made from a VirtualMachineSnapshot: the plan shared by VMOP `Clone` (through a
temporary snapshot of the running or stopped machine) and VirtualMachineSnapshotOperation
`CreateVirtualMachine` (from an existing snapshot).

Names follow DVP's rules: a `nameReplacement` naming the kind (or none) and the old name gives
the new name; otherwise `customization.namePrefix` + name + `customization.nameSuffix`. The new
machine has the kept spec with its disks renamed, no VirtualMachineIPAddress and no
VirtualMachineMACAddress names (so it gets a new IP and new MACs) and no labels (Services do not
select a clone); each disk is made from its VirtualDiskSnapshot. A new name that is taken already
is a conflict; a missing VirtualImage / ClusterVirtualImage is kept by `Strict` and dropped by
`BestEffort`; `DryRun` only reports. `status.resources` entries are DVP's
(apiVersion, kind, name, status, message).
"""

from __future__ import annotations

from typing import Any

from controlplane.api.resources import CLUSTER_VIRTUAL_IMAGES, VIRTUAL_DISKS, VIRTUAL_IMAGES, VIRTUAL_MACHINES
from controlplane.common.kube.client import KubeError
from controlplane.controllers.runtime.state import State

API = VIRTUAL_MACHINES.api_version
CLONED_BY = "virtualization.deckhouse.io/cloned-by"


def entry(kind: str, name: str, status: str, message: str) -> dict[str, str]:
    return {"apiVersion": API, "kind": kind, "name": name, "status": status, "message": message}


def new_name(kind: str, name: str, opts: dict[str, Any]) -> str:
    for rule in opts.get("nameReplacement") or []:
        src = rule.get("from") or {}
        if src.get("name") == name and src.get("kind", kind) == kind:
            return str(rule["to"])
    custom = opts.get("customization") or {}
    return f"{custom.get('namePrefix', '')}{name}{custom.get('nameSuffix', '')}"


class ClonePlan:
    """The objects to create (kind, body) and what stands in their way."""

    def __init__(self, state: State, snapshot: dict[str, Any], kept: dict[str, Any], opts: dict[str, Any]) -> None:
        uid = snapshot["metadata"]["uid"]
        mode = opts.get("mode", "Strict")
        vm = kept.get("vm") or {}
        disks = {d["metadata"]["name"]: d for d in kept.get("vds") or []}
        snaps = {n.removesuffix(f"-{uid}"): n for n in (snapshot.get("status") or {}).get("virtualDiskSnapshotNames")
                 or []}
        self.vm_name = new_name("VirtualMachine", vm.get("metadata", {}).get("name", ""), opts)
        renamed = {d: new_name("VirtualDisk", d, opts) for d in snaps}
        self.conflicts: list[dict[str, str]] = []
        self.missing: list[dict[str, str]] = []
        self.disks: list[dict[str, Any]] = []
        for old, snap in snaps.items():
            pvc = ((disks.get(old) or {}).get("spec") or {}).get("persistentVolumeClaim")
            spec: dict[str, Any] = {"dataSource": {"type": "ObjectRef",
                                                   "objectRef": {"kind": "VirtualDiskSnapshot", "name": snap}}}
            if pvc:
                spec["persistentVolumeClaim"] = pvc
            self.disks.append({"apiVersion": VIRTUAL_DISKS.api_version, "kind": "VirtualDisk",
                               "metadata": {"name": renamed[old], "namespace": state.namespace,
                                            "annotations": {CLONED_BY: state.uid}}, "spec": spec})
        spec = dict(vm.get("spec") or {})
        spec.pop("virtualMachineIPAddressName", None)
        refs = []
        for ref in spec.get("blockDeviceRefs") or []:
            if ref.get("kind") == "VirtualDisk" and ref.get("name"):
                refs.append({**ref, "name": renamed.get(ref["name"], ref["name"])})
                continue
            res = {"VirtualImage": VIRTUAL_IMAGES, "ClusterVirtualImage": CLUSTER_VIRTUAL_IMAGES}.get(ref.get("kind"))
            if res is not None and state.get(res, ref.get("name", "")) is None:
                self.missing.append(entry(str(ref["kind"]), str(ref.get("name", "")), "Failed",
                                          "does not exist: Strict keeps it (the clone waits for it), BestEffort "
                                          "drops it"))
                if mode == "BestEffort":
                    continue
            refs.append(ref)
        spec["blockDeviceRefs"] = refs
        if spec.get("networks"):
            spec["networks"] = [{k: v for k, v in n.items() if k != "virtualMachineMACAddressName"}
                                for n in spec["networks"]]
        self.vm: dict[str, Any] = {"apiVersion": API, "kind": "VirtualMachine",
                   "metadata": {"name": self.vm_name, "namespace": state.namespace,
                                "annotations": {CLONED_BY: state.uid}}, "spec": spec}
        for kind, res, name in [("VirtualMachine", VIRTUAL_MACHINES, self.vm_name),
                                *[("VirtualDisk", VIRTUAL_DISKS, d["metadata"]["name"]) for d in self.disks]]:
            existing = state.get(res, name)
            if existing is not None and ((existing.get("metadata") or {}).get("annotations") or {}).get(
                    CLONED_BY) != state.uid:
                self.conflicts.append(entry(kind, name, "Failed", f"a {kind} named {name!r} exists already: choose "
                                                                  "other names with nameReplacement or customization"))

    def resources(self, status: str, message: str) -> list[dict[str, str]]:
        return [entry("VirtualMachine", self.vm_name, status, message),
                *[entry("VirtualDisk", d["metadata"]["name"], status,
                        f"{message} from VirtualDiskSnapshot {d['spec']['dataSource']['objectRef']['name']}")
                  for d in self.disks]]

    def apply(self, state: State) -> bool:
        """Create what does not exist yet; True once every disk is Ready."""
        ready = 0
        for disk in self.disks:
            current = state.get(VIRTUAL_DISKS, disk["metadata"]["name"])
            if current is None:
                _create(state, VIRTUAL_DISKS, disk)
            elif (current.get("status") or {}).get("phase") == "Ready":
                ready += 1
        if state.get(VIRTUAL_MACHINES, self.vm_name) is None:
            _create(state, VIRTUAL_MACHINES, self.vm)
        return ready == len(self.disks)


def _create(state: State, res: Any, body: dict[str, Any]) -> None:
    try:
        state.ctx.kube.create(res, body)
    except KubeError as exc:
        if not exc.already_exists:
            raise
