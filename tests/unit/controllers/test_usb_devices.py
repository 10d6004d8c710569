"""USB devices in the controllers, table-driven where it helps: a NodeUSBDevice assigned to a
namespace gets its USBDevice there (moved on reassignment, taken away when cleared); a
USBDevice shows its NodeUSBDevice's attributes and readiness and who uses it; a VM gets the
devices it can use in its instance and a condition naming each one it cannot, without being
held back."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import INSTANCES, NODE_USB_DEVICES, USB_DEVICES, VIRTUAL_MACHINES
from controlplane.api.usb import SOURCE_LABEL, UsbAttributes
from controlplane.common.kube.client import NAMESPACES, KubeError, Resource
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.usb.nodeusb import AssignmentHandler
from controlplane.controllers.usb.usbdevice import StatusHandler
from controlplane.controllers.vm.placement import pinned_node
from controlplane.controllers.vm.usb import USBDevicesHandler, device_node, usable
from tests.unit.controllers.recorders import CollectedEvents

ATTRS = UsbAttributes(name="1-1", vendor_id="046d", product_id="c52b", bus=1, device_number=5, node_name="n1",
                      manufacturer="Logitech", product="USB Receiver", speed=12)
NAME = "n1-usb-1-1-046d-c52b"


class Store:
    """Objects by (plural, namespace, name), read as informers (with indexes) and written as the API would."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def put(self, resource: Resource, obj: dict[str, Any]) -> None:
        self.objects[(resource.plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj

    def cache(self, resource: Resource) -> Any:
        store = self
        index_fns: dict[str, Callable[[dict[str, Any]], Iterable[str]]] = {}

        class Cache:
            def get(self, namespace: str, name: str) -> dict[str, Any] | None:
                return store.objects.get((resource.plural, namespace, name))

            def add_index(self, name: str, fn: Callable[[dict[str, Any]], Iterable[str]]) -> None:
                index_fns[name] = fn

            def by_index(self, name: str, value: str) -> list[dict[str, Any]]:
                return [o for (plural, _, _), o in sorted(store.objects.items())
                        if plural == resource.plural and value in index_fns[name](o)]
        return Cache()

    def create(self, resource: Resource, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        key = (resource.plural, body["metadata"].get("namespace", ""), body["metadata"]["name"])
        if key in self.objects:
            raise KubeError(409, "AlreadyExists", f"{key[2]} already exists")
        self.objects[key] = copy.deepcopy(body)
        return body

    def get_or_none(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.objects.get((resource.plural, namespace or "", name))

    def delete_if_exists(self, resource: Resource, name: str, namespace: str | None = None) -> bool:
        return self.objects.pop((resource.plural, namespace or "", name), None) is not None


def _ctx(store: Store) -> Context:
    ctx = Context(kube=store, settings=PlatformSettings(), recorder=CollectedEvents())
    for res in (NODE_USB_DEVICES, USB_DEVICES, VIRTUAL_MACHINES, INSTANCES):
        ctx.informers[res] = store.cache(res)
    return ctx


def _node_device(namespace: str = "", *, ready: bool = True, node: str = "n1") -> dict[str, Any]:
    status: dict[str, Any] = {"attributes": {**ATTRS.to_api(), "nodeName": node}, "nodeName": node}
    conditions.set_condition(status, "Ready", ready, "Ready" if ready else "NotFound",
                             "" if ready else "the device is no longer on the node")
    return {"apiVersion": NODE_USB_DEVICES.api_version, "kind": NODE_USB_DEVICES.kind,
            "metadata": {"name": NAME, "uid": "nu1", "generation": 2}, "spec": {"assignedNamespace": namespace},
            "status": status}


def _copy(namespace: str) -> dict[str, Any]:
    return {"metadata": {"name": NAME, "namespace": namespace, "labels": {SOURCE_LABEL: NAME}, "uid": "u" + namespace,
                         "generation": 1}, "status": {}}


def _assign(store: Store, namespace: str) -> State:
    state = State(_ctx(store), NODE_USB_DEVICES, _node_device(namespace))
    AssignmentHandler().handle(state)
    return state


def _assigned(state: State) -> tuple[str, str]:
    cond = conditions.get(state.status, "Assigned") or {}
    return cond.get("status", ""), cond.get("reason", "")


def test_assigning_a_namespace_creates_the_usb_device_there() -> None:
    store = Store()
    store.put(NAMESPACES, {"metadata": {"name": "team-a"}})
    state = _assign(store, "team-a")
    created = store.objects[(USB_DEVICES.plural, "team-a", NAME)]
    assert created["metadata"]["labels"] == {SOURCE_LABEL: NAME}
    assert [(r["kind"], r["name"]) for r in created["metadata"]["ownerReferences"]] == [("NodeUSBDevice", NAME)]
    assert _assigned(state) == ("False", "InProgress")
    assert _assigned(_assign(store, "team-a")) == ("True", "Assigned")  # the next cycle sees it


@pytest.mark.parametrize(("namespace", "left", "expected"), [
    ("team-b", [], ("False", "InProgress")),   # moved: the old copy goes, the namespace does not exist
    ("", [], ("False", "Available")),         # cleared: the copy goes
    ("team-a", ["team-a"], ("True", "Assigned")),
], ids=["reassigned", "cleared", "kept"])
def test_copies_outside_the_assigned_namespace_are_deleted(namespace: str, left: list[str],
                                                          expected: tuple[str, str]) -> None:
    store = Store()
    store.put(USB_DEVICES, _copy("team-a"))
    state = _assign(store, namespace)
    assert [ns for (plural, ns, _) in store.objects if plural == USB_DEVICES.plural] == left
    assert _assigned(state) == expected
    if namespace == "team-b":
        assert "namespace 'team-b' does not exist" in (conditions.get(state.status, "Assigned") or {})["message"]


def _usb_status(store: Store) -> dict[str, Any]:
    state = State(_ctx(store), USB_DEVICES, _copy("team-a"))
    StatusHandler().handle(state)
    return state.status


def test_usb_device_shows_its_node_device_and_who_uses_it() -> None:
    store = Store()
    store.put(NODE_USB_DEVICES, _node_device("team-a"))
    status = _usb_status(store)
    assert status["nodeName"] == "n1" and status["attributes"]["productID"] == "c52b"
    assert "speed" not in status["attributes"]
    assert conditions.is_true(status, "Ready")
    assert (conditions.get(status, "Attached") or {})["reason"] == "Available"
    store.put(VIRTUAL_MACHINES, {"metadata": {"name": "vm", "namespace": "team-a"},
                                 "spec": {"usbDevices": [{"name": NAME}]},
                                 "status": {"usbDevices": [{"name": NAME, "attached": True, "ready": True}]}})
    attached = conditions.get(_usb_status(store), "Attached") or {}
    assert (attached["status"], attached["reason"], attached["message"]) == (
        "True", "AttachedToVirtualMachine", "attached to VirtualMachine vm")


def test_usb_device_of_an_unplugged_device_is_not_found() -> None:
    store = Store()
    store.put(NODE_USB_DEVICES, _node_device("team-a", ready=False))
    ready = conditions.get(_usb_status(store), "Ready") or {}
    assert (ready["status"], ready["reason"]) == ("False", "NotFound")
    empty = conditions.get(_usb_status(Store()), "Ready") or {}
    assert (empty["reason"], NAME in empty["message"]) == ("NotFound", True)


def _usb_device(*, ready: bool = True, node: str = "n1") -> dict[str, Any]:
    src = _node_device("team-a", ready=ready, node=node)
    src["status"]["attributes"].pop("speed")
    return {**_copy("team-a"), "status": src["status"]}


def _vm_state(store: Store, names: list[str], *, node: str = "") -> State:
    vm = {"apiVersion": VIRTUAL_MACHINES.api_version, "kind": VIRTUAL_MACHINES.kind,
          "metadata": {"name": "vm", "namespace": "team-a", "uid": "v1", "generation": 3},
          "spec": {"usbDevices": [{"name": n} for n in names]} if names else {},
          "status": {"nodeName": node} if node else {}}
    state = State(_ctx(store), VIRTUAL_MACHINES, vm)
    USBDevicesHandler().handle(state)
    return state


# id, USBDevice present (ready, node), VM node -> condition (status, reason), words in the message, devices used
VM_CASES: list[tuple[str, dict[str, Any] | None, str, tuple[str, str], list[str], int]] = [
    ("ready", {}, "n1", ("True", "USBDevicesReady"), [], 1),
    ("not-placed-yet", {}, "", ("True", "USBDevicesReady"), [], 1),
    ("missing", None, "n1", ("False", "USBDeviceNotFound"),
     [f"USBDevice '{NAME}' does not exist", "spec.assignedNamespace", "runs without it"], 0),
    ("unplugged", {"ready": False}, "n1", ("False", "USBDeviceNotReady"), ["no longer on the node"], 0),
    ("other-node", {"node": "n2"}, "n1", ("False", "USBDeviceOnOtherNode"), ["plugged into node n2"], 0),
]


@pytest.mark.parametrize(("usb", "node", "expected", "words", "used"), [c[1:] for c in VM_CASES],
                         ids=[c[0] for c in VM_CASES])
def test_vm_usb_devices(usb: dict[str, Any] | None, node: str, expected: tuple[str, str], words: list[str],
                        used: int) -> None:
    store = Store()
    if usb is not None:
        store.put(USB_DEVICES, _usb_device(**usb))
    state = _vm_state(store, [NAME], node=node)
    cond = conditions.get(state.status, "USBDevicesReady") or {}
    assert (cond["status"], cond["reason"]) == expected
    assert all(w in cond["message"] for w in words), cond["message"]
    assert state.status["usbDevices"] == [{"name": NAME, "ready": used == 1, "attached": False}]
    devices = usable(state, node or "n1")
    assert len(devices) == used
    if used:
        assert devices[0].to_api() == {"name": NAME, "vendorID": "046d", "productID": "c52b", "bus": 1, "device": 5}


def test_a_vm_without_usb_devices_reports_no_usb_condition() -> None:
    state = _vm_state(Store(), [])
    assert conditions.get(state.status, "USBDevicesReady") is None and "usbDevices" not in state.status


def test_attached_follows_the_instance() -> None:
    store = Store()
    store.put(USB_DEVICES, _usb_device())
    store.put(INSTANCES, {"metadata": {"name": "vm", "namespace": "team-a"},
                          "spec": {"nodeName": "n1", "usbDevices": [{"name": NAME}]}})
    assert _vm_state(store, [NAME]).status["usbDevices"] == [{"name": NAME, "ready": True, "attached": True}]


def test_an_unplaced_vm_goes_to_the_node_of_its_first_usable_device() -> None:
    store = Store()
    store.put(USB_DEVICES, _usb_device(node="n2"))
    state = _vm_state(store, ["missing-usb", NAME])
    assert device_node(state) == pinned_node(state) == ("n2", f"USBDevice {NAME!r}")
    assert device_node(_vm_state(Store(), ["missing-usb"])) == (None, "")
