"""The NodeUSBDevice reconciler: a device the administrator assigns to a namespace
(`spec.assignedNamespace`) gets a USBDevice of the same name there, as DVP does.

One handler, `assignment`:
- the USBDevices standing for this device (label `virtualization.deckhouse.io/node-usb-device`)
  in any other namespace are deleted: reassigning moves the device, clearing the field takes
  it away;
- in the assigned namespace the USBDevice is created, owned by the NodeUSBDevice (deleting the
  NodeUSBDevice deletes it); its status follows in the USBDevice reconciler (usbdevice.py);
- `Assigned` says which: `Available` (no namespace), `InProgress` (the namespace does not
  exist yet, or the USBDevice is not there yet), `Assigned`.

The node handler owns `attributes`, `nodeName` and `Ready` (nodehandler/usb_devices.py).
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import NODE_USB_DEVICES, USB_DEVICES
from controlplane.api.usb import SOURCE_LABEL
from controlplane.api.usb import NodeUSBDeviceCondition as C
from controlplane.common.kube.client import NAMESPACES, KubeError
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, own_key

COPIES = indexes.Index(USB_DEVICES, "source",
                       lambda o: [s] if (s := ((o.get("metadata") or {}).get("labels") or {}).get(SOURCE_LABEL)) else [])
"""USBDevices by the NodeUSBDevice they stand for."""


def usb_device_body(state: State, namespace: str) -> dict[str, Any]:
    return {"apiVersion": USB_DEVICES.api_version, "kind": USB_DEVICES.kind,
            "metadata": {"name": state.name, "namespace": namespace, "labels": {SOURCE_LABEL: state.name},
                         "ownerReferences": [state.owner_ref()]}}


class AssignmentHandler:
    name = "assignment"
    condition = C.Type.ASSIGNED

    def _assigned(self, state: State, status: bool, reason: C.AssignedReason, message: str) -> None:
        conditions.set_condition(state.status, C.Type.ASSIGNED, status, reason, message, generation=state.generation)

    def handle(self, state: State) -> None:
        namespace = str(state.spec.get("assignedNamespace") or "")
        for copy in state.lookup(COPIES, state.name):
            ns = copy["metadata"].get("namespace") or ""
            if ns != namespace and not copy["metadata"].get("deletionTimestamp"):
                state.ctx.kube.delete_if_exists(USB_DEVICES, copy["metadata"]["name"], ns)
        state.status["observedGeneration"] = state.generation
        if state.deleting:
            return
        if not namespace:
            self._assigned(state, False, C.AssignedReason.AVAILABLE,
                           "no namespace is assigned: set spec.assignedNamespace to make the device usable there")
            return
        if state.get(USB_DEVICES, state.name, namespace) is not None:
            self._assigned(state, True, C.AssignedReason.ASSIGNED,
                           f"USBDevice {namespace}/{state.name} makes the device usable in namespace {namespace}")
            return
        if state.ctx.kube.get_or_none(NAMESPACES, namespace) is None:
            self._assigned(state, False, C.AssignedReason.IN_PROGRESS,
                           f"namespace {namespace!r} does not exist: create it, or assign another namespace")
            state.requeue(state.ctx.runtime.requeue_no_capacity)  # namespaces are not watched
            return
        try:
            state.ctx.kube.create(USB_DEVICES, usb_device_body(state, namespace), namespace)
        except KubeError as exc:
            if not exc.already_exists:
                raise
        self._assigned(state, False, C.AssignedReason.IN_PROGRESS,
                       f"creating USBDevice {namespace}/{state.name}")


def build(ctx: Context) -> tuple[Reconciler, list[Watch]]:
    reconciler = Reconciler(ctx, NODE_USB_DEVICES, [AssignmentHandler()], failure_condition=C.Type.ASSIGNED)
    indexes.register(ctx, COPIES)

    def source_of(copy: dict[str, Any]) -> list[tuple[str, str]]:
        source = ((copy.get("metadata") or {}).get("labels") or {}).get(SOURCE_LABEL)
        return [("", source)] if source else []

    return reconciler, [Watch(NODE_USB_DEVICES, lambda o: [own_key(o)]), Watch(USB_DEVICES, source_of)]
