"""Writing the VM's InternalVirtualMachineInstance — the one place the VM controller tells a
node handler what to run.

- Placement happens once the class, sizing and block devices allow it; `status.nodeName`
  then makes WaitForFirstConsumer disks provision on that node.
- The instance is created once every prerequisite is met, with the run state the run
  policy asks for; power requests from VirtualMachineOperations become run-state changes
  or one-off `powerRequest`s.
- Changes to a running machine's hardware wait for a restart (`restartAwaitingChanges`),
  or trigger one with `disruptions.restartApprovalMode: Automatic`; disks attached by
  VirtualMachineBlockDeviceAttachments are applied at once (hot-plug).
"""

from __future__ import annotations

import hashlib
from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.instance import (
    DiskBus,
    DiskSpec,
    Firmware,
    MachineType,
    NicModel,
    NicSpec,
    PowerRequest,
    build_spec,
)
from controlplane.api.internal import InstancePhase, PowerAction, RunState, StopReason
from controlplane.api.resources import (
    CLUSTER_VIRTUAL_IMAGES,
    INSTANCES,
    NODE_LABEL,
    VIRTUAL_IMAGES,
    VIRTUAL_MACHINE_CLASSES,
)
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.common.kube.client import KubeError
from controlplane.controllers.names import LABEL_VM_NAME
from controlplane.controllers.runtime.state import State
from controlplane.controllers.scheduler.assumed import AssumedPlacements
from controlplane.controllers.vm import requests
from controlplane.controllers.vm.mac import mac_of_main
from controlplane.controllers.vm.placement import choose_node
from controlplane.controllers.vm.prerequisites import user_data
from controlplane.controllers.vm.usb import usable as usable_usb_devices

HARDWARE = ("hostname", "firmware", "machineType", "paravirtualization", "cpu", "memory", "nics", "cloudInit",
            "shutdownGracePeriodSeconds", "usbDevices")
RUNNING_PHASES = (InstancePhase.STARTING, InstancePhase.RUNNING, InstancePhase.STOPPING)
# stop reasons of an instance that stopped without being asked to (docs/nodehandler.md)
GUEST_STOPS = (StopReason.GUEST_SHUTDOWN, StopReason.CRASHED, StopReason.DESTROYED)
CPU_MODELS = {"Host": "host-model", "HostPassthrough": "host-passthrough", "Discovery": "host-model",
              "Features": "host-model"}


def mac_for(uid: str) -> str:
    """A stable, locally administered MAC derived from the VM's uid (QEMU's 52:54:00 prefix)."""
    h = hashlib.sha256(uid.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in h[:3])


def disk_name(kind: str, name: str) -> str:
    prefix = {"VirtualDisk": "vd", "VirtualImage": "vi", "ClusterVirtualImage": "cvi"}[kind]
    return f"{prefix}-{name.replace('.', '-')}"[:63].rstrip("-")


def _disks(state: State) -> list[DiskSpec]:
    paravirt = state.spec.get("enableParavirtualization", True)
    bus = DiskBus.VIRTIO if paravirt else DiskBus.SATA
    out: list[DiskSpec] = []
    for ref in state.status.get("blockDeviceRefs") or []:
        name, hotplugged = disk_name(ref["kind"], ref["name"]), bool(ref.get("hotplugged"))
        if ref["kind"] == "VirtualDisk":
            out.append(DiskSpec(name=name, bus=bus, read_only=False, cdrom=False, boot_order=len(out) + 1,
                                volume=ref["name"], image_ref=None, hotplugged=hotplugged))
            continue
        image = state.get(VIRTUAL_IMAGES if ref["kind"] == "VirtualImage" else CLUSTER_VIRTUAL_IMAGES, ref["name"])
        status = (image or {}).get("status") or {}
        cdrom = bool(status.get("cdrom"))
        out.append(DiskSpec(name=name, bus=DiskBus.SCSI if cdrom else bus, read_only=True, cdrom=cdrom,
                            boot_order=len(out) + 1, volume=None,
                            image_ref=(status.get("target") or {}).get("registryURL", ""), hotplugged=hotplugged))
    return out


def desired_spec(state: State, node: str) -> dict[str, Any]:
    spec = state.spec
    cls = (state.get(VIRTUAL_MACHINE_CLASSES, spec.get("virtualMachineClassName", "")) or {}).get("spec") or {}
    cls_cpu = cls.get("cpu") or {}
    vm_cpu = spec.get("cpu") or {}
    model = cls_cpu.get("model") if cls_cpu.get("type") == "Model" else CPU_MODELS.get(cls_cpu.get("type") or "",
                                                                                      "host-model")
    fraction = vm_cpu.get("coreFraction") or "100%"
    efi = (spec.get("bootloader") or "BIOS").startswith("EFI")
    prov = spec.get("provisioning") or {}
    paravirt = bool(spec.get("enableParavirtualization", True))
    nic = NicSpec(name="default", mac=mac_of_main(state) or mac_for(state.uid), ip=state.status.get("ipAddress", ""), network="default",
                  model=NicModel.VIRTIO if paravirt else NicModel.E1000)
    return build_spec(
        node_name=node, hostname=state.name[:63], firmware=Firmware.EFI if efi else Firmware.BIOS,
        machine_type=MachineType.Q35 if efi else MachineType.PC, paravirtualization=paravirt,
        cores=int(vm_cpu.get("cores") or 1), cpu_model=str(model), core_fraction="100%" if fraction == "Auto" else fraction,
        memory_size=(spec.get("memory") or {}).get("size"), disks=_disks(state), nics=[nic],
        grace_period=int(spec.get("terminationGracePeriodSeconds") or 60),
        user_data=(user_data(state)[0] or "") if prov.get("type") == "UserData" else None,
        user_data_secret=(prov.get("userDataRef") or {}).get("name", "") if prov.get("type") == "UserDataRef" else None,
        usb_devices=usable_usb_devices(state, node))


def _covers(current: Any, desired: Any) -> bool:
    """Whether the stored value is what we asked for: the API server fills schema defaults
    (e.g. cpu.sockets) into the stored instance, so keys we never set are not a change."""
    if isinstance(desired, dict) and isinstance(current, dict):
        return all(k in current and _covers(current[k], v) for k, v in desired.items())
    if isinstance(desired, list) and isinstance(current, list):
        return len(desired) == len(current) and all(_covers(c, d) for c, d in zip(current, desired, strict=True))
    return bool(current == desired)


def _changes(current: dict[str, Any], desired: dict[str, Any]) -> list[dict[str, Any]]:
    changes = []
    for f in HARDWARE:
        if not _covers(current.get(f), desired.get(f)):
            changes.append({"operation": "replace", "path": f, "currentValue": current.get(f),
                            "desiredValue": desired.get(f)})
    cold_now = [d for d in current.get("disks") or [] if not d.get("hotplugged")]
    cold_new = [d for d in desired.get("disks") or [] if not d.get("hotplugged")]
    if not _covers(cold_now, cold_new):
        changes.append({"operation": "replace", "path": "disks", "currentValue": [d["name"] for d in cold_now],
                        "desiredValue": [d["name"] for d in cold_new]})
    return changes


def _prerequisites_met(state: State) -> bool:
    s = state.status
    return (conditions.is_true(s, C.Type.CLASS_READY) and conditions.get(s, C.Type.SIZING_POLICY_MATCHED) is None
            and conditions.is_true(s, C.Type.IP_ADDRESS_READY) and conditions.is_true(s, C.Type.MAC_ADDRESS_READY)
            and conditions.is_true(s, C.Type.BLOCK_DEVICES_READY)
            and conditions.is_true(s, C.Type.PROVISIONING_READY))


def _placeable(state: State) -> bool:
    s = state.status
    bd = conditions.get(s, C.Type.BLOCK_DEVICES_READY) or {}
    return (conditions.is_true(s, C.Type.CLASS_READY) and conditions.get(s, C.Type.SIZING_POLICY_MATCHED) is None
            and (bd.get("status") == "True" or bd.get("reason") == C.BlockDevicesReadyReason.WAITING_FOR_PROVISIONING_TO_PVC))


class InstanceHandler:
    name = "instance"
    condition = C.Type.RUNNING

    def __init__(self, assumed: AssumedPlacements | None = None) -> None:
        self.assumed = assumed if assumed is not None else AssumedPlacements()

    def handle(self, state: State) -> None:
        inst = state.get(INSTANCES, state.name)
        node = ((inst or {}).get("spec") or {}).get("nodeName") or state.status.get("nodeName")
        if not node:
            if not _placeable(state):
                return
            decision = choose_node(state, self.assumed)
            node = decision.node
            if node is None:
                conditions.set_condition(state.status, C.Type.RUNNING, False, C.RunningReason.VIRTUAL_MACHINE_NOT_RUNNING,
                                         decision.message, generation=state.generation)
                state.requeue(state.ctx.runtime.requeue_no_capacity)
                return
        state.status["nodeName"] = node
        if not _prerequisites_met(state):
            return
        desired = desired_spec(state, node)
        if inst is None:
            self._create(state, desired)
        else:
            self._update(state, inst, desired)

    def _run_state(self, state: State, current: str | None) -> RunState:
        policy = state.spec.get("runPolicy") or "AlwaysOnUnlessStoppedManually"
        if policy == "AlwaysOff":
            return RunState.STOPPED
        if policy == "AlwaysOn":
            return RunState.RUNNING
        if current:
            return RunState(current)
        return RunState.STOPPED if policy == "Manual" else RunState.RUNNING

    def _create(self, state: State, desired: dict[str, Any]) -> None:
        desired["runState"] = self._run_state(state, None)
        body = {"apiVersion": INSTANCES.api_version, "kind": INSTANCES.kind,
                "metadata": {"name": state.name, "namespace": state.namespace,
                             "labels": {NODE_LABEL: desired["nodeName"], LABEL_VM_NAME: state.name},
                             "ownerReferences": [state.owner_ref()]},
                "spec": desired}
        try:
            state.ctx.kube.create(INSTANCES, body)
            state.ctx.recorder.record(state.changed, type="Normal", reason="InstanceCreated",
                                      message=f"virtual machine placed on node {desired['nodeName']}")
        except KubeError as exc:
            if not exc.already_exists:
                raise

    def _update(self, state: State, inst: dict[str, Any], desired: dict[str, Any]) -> None:
        current = inst.get("spec") or {}
        inst_status = inst.get("status") or {}
        new = dict(current)
        new["runState"] = self._run_state(state, current.get("runState"))
        req = requests.read(state.changed)
        pending = req is not None and req["id"] not in (inst_status.get("handledPowerRequest"),
                                                         (current.get("powerRequest") or {}).get("id"))
        policy = state.spec.get("runPolicy") or "AlwaysOnUnlessStoppedManually"
        # a guest that powered itself off: AlwaysOn starts it again, other policies keep it off
        guest_stopped = (inst_status.get("phase") == InstancePhase.STOPPED and current.get("runState") == RunState.RUNNING
                         and inst_status.get("stopReason") in GUEST_STOPS and not pending
                         and (current.get("powerRequest") or {}).get("id") in (None, inst_status.get("handledPowerRequest")))
        if guest_stopped and policy == "AlwaysOn":
            new["powerRequest"] = PowerRequest(id=f"{state.uid[:8]}-autostart-{inst['metadata']['resourceVersion']}",
                                               action=PowerAction.START, force=False).to_api()
        elif guest_stopped and policy in ("Manual", "AlwaysOnUnlessStoppedManually"):
            new["runState"] = RunState.STOPPED
        if pending and req is not None:
            action = PowerAction(req["action"])
            if action == PowerAction.START:
                new["runState"] = RunState.RUNNING
            elif action == PowerAction.STOP:
                new["runState"] = RunState.STOPPED if policy != "AlwaysOn" else RunState.RUNNING
            new["powerRequest"] = PowerRequest(id=req["id"], action=action, force=bool(req.get("force"))).to_api()
        running = inst_status.get("phase") in RUNNING_PHASES and new["runState"] == RunState.RUNNING
        changes = _changes(current, desired)
        approve = (state.spec.get("disruptions") or {}).get("restartApprovalMode") == "Automatic"
        restarting = (new.get("powerRequest") or {}).get("action") in tuple(PowerAction) and \
            (new.get("powerRequest") or {}).get("id") != (current.get("powerRequest") or {}).get("id")
        if running and changes and not restarting and not approve:
            for f in ("nodeName",):
                new[f] = desired[f]
            new["disks"] = [d for d in current.get("disks") or [] if not d.get("hotplugged")] + \
                [d for d in desired["disks"] if d.get("hotplugged")]
            state.status["restartAwaitingChanges"] = changes
            conditions.set_condition(state.status, C.Type.AWAITING_RESTART_TO_APPLY_CONFIGURATION, True,
                                     C.AwaitingRestartToApplyConfigurationReason.RESTART_AWAITING_CHANGES_EXIST,
                                     "changes are applied on the next restart: " + ", ".join(c["path"] for c in changes),
                                     generation=state.generation)
        else:
            new.update(desired)
            if running and changes and approve and not restarting:
                new["powerRequest"] = PowerRequest(id=f"{state.uid[:8]}-apply-{state.generation}",
                                                   action=PowerAction.RESTART, force=False).to_api()
            state.status.pop("restartAwaitingChanges", None)
            conditions.remove(state.status, C.Type.AWAITING_RESTART_TO_APPLY_CONFIGURATION)
        if not _covers(current, new):  # the stored spec holds the schema's defaults too: no PUT that changes nothing
            body = dict(inst)
            body["spec"] = new
            state.ctx.kube.replace(INSTANCES, body)
