"""USB devices in a real `dvp server`, driven with kubectl 1.33 and DVP-form manifests: a
NodeUSBDevice (its status written as a node handler writes it) shows DVP's printer columns;
assigning it to a namespace creates the USBDevice there with the device's attributes, clearing
the assignment takes it away; a VM naming a USB device that is not in its namespace says so in
USBDevicesReady, naming the device, and is not held back by it."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import polling
from tests.services.apiserver import ApiServerProcess
from tests.services.kubectl import get, kubectl

pytestmark = pytest.mark.integration
API = "virtualization.deckhouse.io/v1alpha2"
NAME = "lab-node-usb-1-1-046d-c52b"
NS = "usb-team"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("usb") / "data")
    srv.start(60)
    srv.wait_ready(90)  # the controllers included: the first test's answer comes from them
    yield srv
    srv.stop()


eventually = functools.partial(polling.eventually, timeout=30, interval=0.2)


def apply(server: ApiServerProcess, doc: dict[str, Any]) -> None:
    kubectl(server, "apply", "-f", "-", input=json.dumps(doc))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def table(server: ApiServerProcess, *args: str) -> list[list[str]]:
    return [line.split() for line in kubectl(server, "get", *args).stdout.strip().split("\n")]


@pytest.fixture(scope="module")
def node_device(server: ApiServerProcess) -> str:
    """A NodeUSBDevice as DVP documents it, with the status a node handler publishes."""
    apply(server, {"apiVersion": API, "kind": "NodeUSBDevice", "metadata": {"name": NAME},
                   "spec": {"assignedNamespace": ""}})
    status = {"nodeName": "lab-node", "attributes": {
        "name": "1-1", "vendorID": "046d", "productID": "c52b", "bus": "1", "deviceNumber": "5",
        "devicePath": "/dev/bus/usb/001/005", "manufacturer": "Logitech", "product": "Receiver",
        "serial": "ABC123", "nodeName": "lab-node", "speed": 12, "major": 189, "minor": 4, "bcd": "1211"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "plugged in",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    kubectl(server, "patch", "nodeusbdevice", NAME, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}))
    kubectl(server, "create", "namespace", NS)
    return NAME


def test_node_usb_devices_show_dvp_columns(server: ApiServerProcess, node_device: str) -> None:
    eventually(lambda: condition(get(server, "nusb", node_device), "Assigned").get("reason") == "Available",
               what="Assigned=Available on the NodeUSBDevice")
    header, row = table(server, "nodeusbdevices")
    assert header == ["NAME", "NODE", "READY", "ASSIGNED", "NAMESPACE", "AGE"]
    assert row[:4] == [node_device, "lab-node", "True", "False"]
    obj = get(server, "nusb", node_device)
    assert obj["spec"] == {"assignedNamespace": ""} and obj["status"]["attributes"]["speed"] == 12


def test_assigning_a_namespace_creates_the_usb_device(server: ApiServerProcess, node_device: str) -> None:
    kubectl(server, "patch", "nodeusbdevice", node_device, "--type=merge",
            "-p", json.dumps({"spec": {"assignedNamespace": NS}}))
    usb = eventually(lambda: (o := get(server, "usb", node_device, "-n", NS)) and condition(o, "Ready") and o)
    assert usb["status"]["nodeName"] == "lab-node" and usb["status"]["attributes"]["serial"] == "ABC123"
    assert "speed" not in usb["status"]["attributes"] and condition(usb, "Ready")["status"] == "True"
    assert [r["kind"] for r in usb["metadata"]["ownerReferences"]] == ["NodeUSBDevice"]
    assigned = eventually(lambda: (c := condition(get(server, "nusb", node_device), "Assigned"))
                          .get("status") == "True" and c)
    assert NS in assigned["message"]
    eventually(lambda: condition(get(server, "usb", node_device, "-n", NS), "Attached").get("reason") == "Available")
    assert table(server, "usbdevices", "-n", NS)[0] == ["NAME", "NODE", "MANUFACTURER", "PRODUCT", "ATTACHED", "AGE"]
    wide = table(server, "usb", "-n", NS, "-o", "wide")
    assert wide[0][2:6] == ["VENDORID", "PRODUCTID", "BUS", "DEVICENUMBER"] and wide[1][2:6] == ["046d", "c52b", "1", "5"]


def test_a_vm_naming_a_missing_usb_device_says_which(server: ApiServerProcess, node_device: str) -> None:
    eventually(lambda: get(server, "usb", node_device, "-n", NS))
    apply(server, {"apiVersion": API, "kind": "VirtualMachine", "metadata": {"name": "usb-vm", "namespace": NS},
                   "spec": {"virtualMachineClassName": "generic", "runPolicy": "AlwaysOff", "cpu": {"cores": 1},
                            "memory": {"size": "256Mi"},
                            "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "usb-vm-root"}],
                            "usbDevices": [{"name": node_device}, {"name": "missing-usb"}]}})
    cond = eventually(lambda: (c := condition(get(server, "vm", "usb-vm", "-n", NS), "USBDevicesReady")) and c)
    assert (cond["status"], cond["reason"]) == ("False", "USBDeviceNotFound")
    assert "'missing-usb' does not exist" in cond["message"] and node_device not in cond["message"]
    vm = get(server, "vm", "usb-vm", "-n", NS)
    assert vm["status"]["usbDevices"] == [{"name": node_device, "ready": True, "attached": False},
                                          {"name": "missing-usb", "ready": False, "attached": False}]


def test_a_dvp_form_usb_device_without_its_node_device_is_not_found(server: ApiServerProcess) -> None:
    apply(server, {"apiVersion": API, "kind": "USBDevice", "metadata": {"name": "orphan", "namespace": NS}})
    ready = eventually(lambda: (c := condition(get(server, "usb", "orphan", "-n", NS), "Ready")) and c)
    assert (ready["status"], ready["reason"]) == ("False", "NotFound") and "NodeUSBDevice orphan" in ready["message"]


def test_clearing_the_assignment_takes_the_usb_device_away(server: ApiServerProcess, node_device: str) -> None:
    eventually(lambda: get(server, "usb", node_device, "-n", NS))
    kubectl(server, "patch", "nodeusbdevice", node_device, "--type=merge",
            "-p", json.dumps({"spec": {"assignedNamespace": ""}}))
    eventually(lambda: not get(server, "usb", node_device, "-n", NS))
    assert eventually(lambda: condition(get(server, "nusb", node_device), "Assigned").get("reason") == "Available")
