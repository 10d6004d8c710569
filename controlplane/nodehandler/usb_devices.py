"""Publishing this node's USB devices as NodeUSBDevice objects.

Every `usb_rescan_every` seconds (and at start) the handler reads sysfs (`usb_sysfs.scan`)
and lists its own NodeUSBDevices (label `virtualization.deckhouse.io/node=<node>`, names
`<node>-usb-...`: the node authorizer lets a node write only those). `plan` compares the two:

- a device without an object gets one (spec left to the administrator: `assignedNamespace`
  defaults to ""), then its status: `attributes`, `nodeName`, `Ready=True`;
- an object whose status differs from what sysfs says (the device got a new address after a
  replug, or was back) gets its status written — and only then, so an idle node writes nothing;
- an object whose device is gone is deleted when no namespace is assigned; an assigned one
  stays, `Ready=False` with reason `NotFound`, so the administrator's assignment (and the
  USBDevice in that namespace) outlive a device unplugged for a moment.

The `Assigned` condition belongs to the controllers; it is kept as it is.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.api.condition_builder import apply as apply_condition
from controlplane.api.condition_builder import get_in
from controlplane.api.internal import NODE_LABEL
from controlplane.api.resources import NODE_USB_DEVICES
from controlplane.api.usb import NodeUSBDeviceCondition as C
from controlplane.api.usb import UsbAttributes, node_device_name
from controlplane.common.kube.client import KubeClient, KubeError
from controlplane.nodehandler.usb_sysfs import scan

log = logging.getLogger(__name__)


@dataclass
class Plan:
    create: list[dict[str, Any]] = field(default_factory=list)
    """New objects (metadata and spec; their status follows in `status`)."""
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Object name -> the status to write."""
    delete: list[str] = field(default_factory=list)


def _ready(found: bool) -> tuple[bool, C.ReadyReason, str]:
    if found:
        return True, C.ReadyReason.READY, "the device is plugged into the node"
    return (False, C.ReadyReason.NOT_FOUND,
            "the device is no longer on the node: plug it in again, or delete this NodeUSBDevice")


def desired_status(current: dict[str, Any], node: str, attrs: UsbAttributes | None) -> dict[str, Any]:
    """`current` status with what the node knows set: attributes (kept when the device is gone),
    nodeName and Ready."""
    status = dict(current)
    if attrs is not None:
        status["attributes"] = attrs.to_api()
    status["nodeName"] = node
    ok, reason, message = _ready(attrs is not None)
    old = get_in(current.get("conditions") or [], C.Type.READY)
    if not old or (old.get("status"), old.get("reason"), old.get("message")) != (str(ok), str(reason), message):
        status["conditions"] = apply_condition(list(current.get("conditions") or []), C.Type.READY, ok, reason, message)
    return status


def plan(node: str, found: list[UsbAttributes], existing: list[dict[str, Any]]) -> Plan:
    out = Plan()
    by_name = {node_device_name(node, a): a for a in found}
    current = {o["metadata"]["name"]: o for o in existing}
    for name, new in by_name.items():
        if name not in current:
            out.create.append({"apiVersion": NODE_USB_DEVICES.api_version, "kind": NODE_USB_DEVICES.kind,
                               "metadata": {"name": name, "labels": {NODE_LABEL: node}}, "spec": {}})
            out.status[name] = desired_status({}, node, new)
    for name, obj in current.items():
        attrs = by_name.get(name)
        if attrs is None and not (obj.get("spec") or {}).get("assignedNamespace"):
            out.delete.append(name)
            continue
        status = obj.get("status") or {}
        wanted = desired_status(status, node, attrs)
        if wanted != status:
            out.status[name] = wanted
    return out


class UsbPublisher:
    """Runs `plan` against the API every `every` seconds until stopped."""

    def __init__(self, kube: KubeClient, *, node: str, host_root: Path, every: float) -> None:
        self.kube, self.node, self.host_root, self.every = kube, node, host_root, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> Plan:
        found = scan(self.host_root, node=self.node)
        existing = self.kube.list(NODE_USB_DEVICES, label_selector=f"{NODE_LABEL}={self.node}").get("items") or []
        todo = plan(self.node, found, existing)
        objects = {o["metadata"]["name"]: o for o in existing}
        for body in todo.create:
            try:
                objects[body["metadata"]["name"]] = self.kube.create(NODE_USB_DEVICES, body)
            except KubeError as exc:
                if not exc.already_exists:
                    raise
                objects[body["metadata"]["name"]] = self.kube.get(NODE_USB_DEVICES, body["metadata"]["name"])
        for name, status in todo.status.items():
            body = dict(objects[name])
            body["status"] = status
            self.kube.replace(NODE_USB_DEVICES, body, subresource="status")
        for name in todo.delete:
            self.kube.delete_if_exists(NODE_USB_DEVICES, name)
        if todo.create or todo.delete:
            log.info("USB devices of node %s: %d found, %d new, %d removed", self.node, len(found),
                     len(todo.create), len(todo.delete))
        return todo

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="usb-devices", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                self.sync()
            except Exception:
                log.exception("publishing the USB devices of node %s failed; trying again in %.0fs",
                              self.node, self.every)
            if self._stop.wait(self.every):
                return
