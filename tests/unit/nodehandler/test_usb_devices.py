"""USB devices on a node: sysfs read from a fake tree (devices kept; interfaces, root hubs and
hubs left out), the NodeUSBDevice plan (create, status only when changed, delete or NotFound
when a device goes), and the `<hostdev>` the domain gets for a passed-through device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlplane.api.condition_builder import get_in
from controlplane.api.crds import INTERNAL_GROUP, crds_by_kind, served_schema
from controlplane.api.instance import SpecError, parse_instance
from controlplane.api.usb import UsbAttributes, node_device_name, owned_by
from controlplane.nodehandler.usb_devices import plan
from controlplane.nodehandler.usb_sysfs import scan
from tests.unit.crd_support import field_errors
from tests.unit.nodehandler.test_domainxml import _obj, _xml

MOUSE = {"idVendor": "046d", "idProduct": "C52B", "manufacturer": "Logitech", "product": "USB Receiver",
         "busnum": "1", "devnum": "5", "speed": "12", "bDeviceClass": "00", "bcdDevice": "1211", "dev": "189:4"}


def _device(root: Path, name: str, **attrs: str) -> None:
    entry = root / "sys/bus/usb/devices" / name
    entry.mkdir(parents=True)
    for key, value in attrs.items():
        (entry / key).write_text(value + "\n")


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    _device(tmp_path, "usb1", **{**MOUSE, "idVendor": "1d6b", "idProduct": "0002", "bDeviceClass": "09"})
    _device(tmp_path, "1-1", **MOUSE)
    _device(tmp_path, "1-1:1.0", bInterfaceClass="03")
    _device(tmp_path, "1-2", **{**MOUSE, "idVendor": "05e3", "idProduct": "0608", "bDeviceClass": "09"})  # a hub
    _device(tmp_path, "1-2.1", idVendor="0781", idProduct="5583", busnum="1", devnum="7", speed="1.5",
            serial="4C530001", bDeviceClass="00")
    _device(tmp_path, "2-1", idVendor="0781", busnum="2", devnum="2")  # going away: no idProduct
    return tmp_path


def test_scan_keeps_devices_and_leaves_out_interfaces_and_hubs(sysfs: Path) -> None:
    found = scan(sysfs, node="n1")
    assert [d.name for d in found] == ["1-1", "1-2.1"]
    mouse, stick = found
    assert mouse == UsbAttributes(name="1-1", vendor_id="046d", product_id="c52b", bus=1, device_number=5,
                                  node_name="n1", manufacturer="Logitech", product="USB Receiver", serial="",
                                  bcd="1211", speed=12, major=189, minor=4)
    assert mouse.device_path == "/dev/bus/usb/001/005"
    assert (stick.serial, stick.speed, stick.manufacturer, stick.major) == ("4C530001", 1, "", 0)


def test_scan_of_a_host_without_usb_is_empty(tmp_path: Path) -> None:
    assert scan(tmp_path, node="n1") == []


def test_names_start_with_the_node_and_round_trip_through_the_api(sysfs: Path) -> None:
    stick = scan(sysfs, node="n1")[1]
    assert node_device_name("n1", stick) == "n1-usb-1-2.1-0781-5583"
    assert owned_by("n1-usb-1-2.1-0781-5583", "n1") and not owned_by("n1-usb-1-2.1-0781-5583", "n2")
    assert UsbAttributes.from_api(stick.to_api()) == stick
    assert "speed" not in stick.to_api(with_speed=False)
    assert UsbAttributes.from_api({"vendorID": "0781"}) is None


def _existing(name: str, *, status: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"assignedNamespace": namespace}, "status": status}


def test_plan_creates_new_devices_and_then_writes_nothing(sysfs: Path) -> None:
    found = scan(sysfs, node="n1")
    first = plan("n1", found, [])
    assert [b["metadata"] for b in first.create] == [
        {"name": "n1-usb-1-1-046d-c52b", "labels": {"virtualization.deckhouse.io/node": "n1"}},
        {"name": "n1-usb-1-2.1-0781-5583", "labels": {"virtualization.deckhouse.io/node": "n1"}}]
    status = first.status["n1-usb-1-1-046d-c52b"]
    assert status["nodeName"] == "n1" and status["attributes"]["vendorID"] == "046d"
    assert (get_in(status["conditions"], "Ready") or {})["status"] == "True"
    stored = [_existing(n, status=s) for n, s in first.status.items()]
    again = plan("n1", found, stored)
    assert (again.create, again.status, again.delete) == ([], {}, [])


def test_plan_follows_a_new_address_and_a_gone_device(sysfs: Path) -> None:
    found = scan(sysfs, node="n1")
    stored = [_existing(n, status=s, namespace="team-a" if "1-1-" in n else "")
              for n, s in plan("n1", found, []).status.items()]
    moved = [UsbAttributes(**{**found[0].__dict__, "device_number": 9})]  # replugged: new devnum; the stick is gone
    todo = plan("n1", moved, stored)
    assert todo.delete == ["n1-usb-1-2.1-0781-5583"]  # unassigned: deleted
    assert todo.status["n1-usb-1-1-046d-c52b"]["attributes"]["deviceNumber"] == "9"
    gone = plan("n1", [], stored)
    ready = get_in(gone.status["n1-usb-1-1-046d-c52b"]["conditions"], "Ready") or {}
    assert (ready["status"], ready["reason"]) == ("False", "NotFound")  # assigned: kept, NotFound
    assert gone.status["n1-usb-1-1-046d-c52b"]["attributes"]["deviceNumber"] == "5"


USB = {"name": "mouse", "vendorID": "046d", "productID": "c52b", "bus": 1, "device": 5}


def test_domain_gets_a_usb_hostdev_by_ids_and_address() -> None:
    dom = _xml(usbDevices=[USB])
    (hostdev,) = dom.iter("hostdev")
    assert (hostdev.get("mode"), hostdev.get("type"), hostdev.get("managed")) == ("subsystem", "usb", "yes")
    source = hostdev.find("source")
    assert source is not None
    assert [(e.tag, dict(e.attrib)) for e in source] == [
        ("vendor", {"id": "0x046d"}), ("product", {"id": "0xc52b"}), ("address", {"bus": "1", "device": "5"})]
    assert hostdev.find("alias").get("name") == "ua-usb-mouse"  # type: ignore[union-attr]
    assert list(_xml().iter("hostdev")) == []


@pytest.mark.parametrize(("usb", "field"), [
    ({**USB, "vendorID": "46d"}, "spec.usbDevices[0].vendorID"),
    ({**USB, "bus": "x"}, "spec.usbDevices[0]"),
], ids=["short-id", "bad-bus"])
def test_instance_refuses_a_bad_usb_device_naming_the_field(usb: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_instance(_obj(usbDevices=[usb]))


def test_instance_usb_devices_round_trip() -> None:
    (dev,) = parse_instance(_obj(usbDevices=[{**USB, "vendorID": "0x046D"}])).usb_devices
    assert dev.to_api() == USB


def test_the_instance_schema_takes_usb_devices_next_to_cloud_init() -> None:
    schema = served_schema(crds_by_kind(INTERNAL_GROUP)["InternalVirtualMachineInstance"], "v1")
    spec = schema["properties"]["spec"]["properties"]
    assert spec["usbDevices"]["type"] == "array" and spec["cloudInit"]["type"] == "object"
    obj = {"apiVersion": "internal.virtualization.deckhouse.io/v1", "kind": "InternalVirtualMachineInstance",
           **_obj(usbDevices=[USB], cloudInit={"userData": "#cloud-config"})}
    assert field_errors(schema, obj) == []
    bad = _obj(usbDevices=[{**USB, "vendorID": "46D"}])
    assert [f for f, _ in field_errors(schema, {**obj, **bad})] == ["spec.usbDevices[0].vendorID"]
