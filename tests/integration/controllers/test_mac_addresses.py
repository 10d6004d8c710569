"""MAC address IPAM in a real `dvp server`, driven with kubectl 1.33: a VM's interface gets a
VirtualMachineMACAddress and its lease under the configured prefix, a static MAC is honoured,
a second claim of one MAC is refused with a condition naming the holder, and deleting the VM
frees its MAC. A claim is created with its cleanup finalizer in place."""

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
PREFIX = "02:5a:7e"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("mac") / "data", extra_args=["--mac-prefix", PREFIX])
    srv.start(60)
    yield srv
    srv.stop()


eventually = functools.partial(polling.eventually, timeout=30, interval=0.2)


def apply(server: ApiServerProcess, doc: dict[str, Any]) -> None:
    kubectl(server, "apply", "-f", "-", input=json.dumps(doc))


def vm(name: str, networks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"virtualMachineClassName": "generic", "runPolicy": "AlwaysOff",
                            "cpu": {"cores": 1}, "memory": {"size": "256Mi"},
                            "blockDeviceRefs": [{"kind": "VirtualDisk", "name": f"{name}-root"}]}
    if networks is not None:
        spec["networks"] = networks
    return {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def vmmac(name: str, address: str = "") -> dict[str, Any]:
    return {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineMACAddress",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"address": address} if address else {}}


def first_network(server: ApiServerProcess, name: str) -> dict[str, Any]:
    networks: list[dict[str, Any]] = get(server, "vm", name).get("status", {}).get("networks") or [{}]
    return networks[0]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def test_a_vm_gets_a_mac_lease_and_deleting_it_frees_the_mac(server: ApiServerProcess) -> None:
    apply(server, vm("mac-auto"))
    net = eventually(lambda: (n := first_network(server, "mac-auto")).get("macAddress") and n)
    mac = net["macAddress"]
    assert mac.startswith(PREFIX + ":") and net["type"] == "Main" and net["virtualMachineMACAddressName"] == "mac-auto"
    claim = eventually(lambda: (o := get(server, "vmmac", "mac-auto")).get("status", {}).get("phase") == "Attached"
                       and o)
    assert claim["status"]["address"] == mac and claim["status"]["virtualMachineName"] == "mac-auto"
    assert [r["kind"] for r in claim["metadata"]["ownerReferences"]] == ["VirtualMachine"]
    lease_name = "mac-" + mac.replace(":", "-")
    lease = eventually(lambda: (o := get(server, "vmmacl", lease_name)).get("status", {}).get("phase") == "Bound" and o)
    assert lease["spec"]["virtualMachineMACAddressRef"] == {"name": "mac-auto", "namespace": "default"}
    ready = eventually(lambda: condition(get(server, "vm", "mac-auto"), "VirtualMachineMACAddressReady"))
    assert ready["status"] == "True"
    table = kubectl(server, "get", "vmmac", "mac-auto").stdout
    assert table.split("\n")[0].split() == ["NAME", "ADDRESS", "STATUS", "VM", "AGE"] and mac in table

    kubectl(server, "delete", "vm", "mac-auto", "--wait=false")
    assert eventually(lambda: not get(server, "vmmac", "mac-auto") and not get(server, "vmmacl", lease_name))


def test_a_static_mac_is_honoured_and_a_duplicate_is_refused(server: ApiServerProcess) -> None:
    # the create response carries the controller's finalizer already (set by the API server, as kube's PVC protection)
    made = json.loads(kubectl(server, "create", "-o", "json", "-f", "-",
                              input=json.dumps(vmmac("mac-static", "AA:BB:CC:01:02:03"))).stdout)
    assert made["metadata"]["finalizers"] == ["virtualization.deckhouse.io/vmmac-cleanup"]
    apply(server, vm("mac-static-vm", [{"type": "Main", "virtualMachineMACAddressName": "mac-static"}]))
    net = eventually(lambda: first_network(server, "mac-static-vm").get("macAddress"))
    assert net == "aa:bb:cc:01:02:03"
    assert eventually(lambda: get(server, "vmmac", "mac-static").get("status", {}).get("phase") == "Attached")
    assert get(server, "vmmacl", "mac-aa-bb-cc-01-02-03")["spec"]["virtualMachineMACAddressRef"]["name"] == "mac-static"

    # a second claim of that MAC is refused at admission, naming the field and the holder (DVP's webhook)
    out = kubectl(server, "apply", "-f", "-", input=json.dumps(vmmac("mac-dup", "aa-bb-cc-01-02-03")), check=False)
    assert out.returncode != 0 and "spec.address" in out.stderr and "mac-static" in out.stderr
    # a second VM naming the attached claim waits, and says which VM has it
    apply(server, vm("mac-dup-vm", [{"type": "Main", "virtualMachineMACAddressName": "mac-static"}]))
    ready = eventually(lambda: (c := condition(get(server, "vm", "mac-dup-vm"), "VirtualMachineMACAddressReady"))
                       and c["status"] == "False" and c)
    assert ready["reason"] == "VirtualMachineMACAddressNotReady"
    assert "attached to VirtualMachine 'mac-static-vm'" in ready["message"]
    assert get(server, "vmmac", "mac-static")["status"]["virtualMachineName"] == "mac-static-vm"


def test_claims_of_one_mac_racing_past_admission_end_with_one_winner(server: ApiServerProcess) -> None:
    docs = [vmmac(n, "aa:bb:cc:09:09:09") for n in ("mac-race-a", "mac-race-b")]
    out = kubectl(server, "apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs), check=False)
    names = [n for n in ("mac-race-a", "mac-race-b") if get(server, "vmmac", n)]
    assert names, out.stderr
    assert len(names) == 2 or "spec.address" in out.stderr, "the loser is refused at admission ..."
    phases = eventually(lambda: sorted(get(server, "vmmac", n).get("status", {}).get("phase", "") for n in names)
                        == (["Bound", "Pending"] if len(names) == 2 else ["Bound"]) and True)
    assert phases
    for name in names:  # ... or told by its condition who holds the MAC
        bound = condition(get(server, "vmmac", name), "Bound") or {}
        if bound.get("status") == "False":
            assert bound["reason"] == "VirtualMachineMACAddressLeaseAlreadyExists" and "already leased" in bound["message"]


def test_a_bound_mac_cannot_change(server: ApiServerProcess) -> None:
    apply(server, vmmac("mac-fixed", "aa:bb:cc:07:07:07"))
    eventually(lambda: get(server, "vmmac", "mac-fixed").get("status", {}).get("phase") == "Bound")
    out = kubectl(server, "patch", "vmmac", "mac-fixed", "--type=merge", "-p", '{"spec":{"address":"aa:bb:cc:07:07:08"}}',
                  check=False)
    assert out.returncode != 0 and "spec.address" in out.stderr and "cannot be changed" in out.stderr


def test_a_malformed_mac_is_refused_naming_the_field(server: ApiServerProcess) -> None:
    out = kubectl(server, "apply", "-f", "-", input=json.dumps(vmmac("mac-bad", "aa:bb:cc")), check=False)
    assert out.returncode != 0 and "spec.address" in out.stderr
