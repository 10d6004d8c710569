"""Phase changes show up as events (what `kubectl describe` and `kubectl events --for` list):
a VirtualMachine's, a VirtualMachineIPAddress's and a VirtualMachineOperation's."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

from tests.services.apiserver import KUBECTL_V33, ApiServerProcess

VM = """
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachine
metadata: {name: events-vm, namespace: default}
spec:
  virtualMachineClassName: generic
  cpu: {cores: 1}
  memory: {size: 256Mi}
  blockDeviceRefs: [{kind: VirtualDisk, name: no-such-disk}]
"""
VMIP = """
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachineIPAddress
metadata: {name: events-ip, namespace: default}
spec: {type: Auto}
"""
VMOP = """
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualMachineOperation
metadata: {name: events-op, namespace: default}
spec: {type: Start, virtualMachineName: events-vm}
"""


def test_vm_phase_change_is_an_event(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("apply", "-f", "-", input=VM)
    try:
        deadline = time.monotonic() + 60
        found: list[dict[str, object]] = []
        while not found and time.monotonic() < deadline:
            events = json.loads(apiserver.kubectl("get", "events", "-n", "default", "-o", "json").stdout)["items"]
            found = [e for e in events if e["involvedObject"].get("name") == "events-vm"
                     and e["involvedObject"].get("kind") == "VirtualMachine" and e["reason"] == "PhaseChanged"]
            time.sleep(0.5)
        assert found, "no PhaseChanged event for the VM within 60s"
        assert found[0]["message"] == "phase (none) -> Pending" and found[0]["type"] == "Normal"
        described = apiserver.kubectl("describe", "virtualmachine", "events-vm", "-n", "default").stdout
        assert "PhaseChanged" in described
    finally:
        apiserver.kubectl("delete", "virtualmachine", "events-vm", "-n", "default", "--wait=false")


def _events_for(apiserver: ApiServerProcess, kind: str, name: str) -> list[dict[str, Any]]:
    """What `kubectl events --for` (kubectl 1.33) lists for one object."""
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "HOME": str(apiserver.home)}
    out = subprocess.run([str(KUBECTL_V33), "events", "-n", "default", "--for", f"{kind}/{name}", "-o", "json"],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def _wait_phase_event(apiserver: ApiServerProcess, kind: str, name: str, message: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while time.monotonic() < deadline:
        events = _events_for(apiserver, kind, name)
        seen = [e["message"] for e in events if e["reason"] == "PhaseChanged"]
        for e in events:
            if e["reason"] == "PhaseChanged" and e["message"] == message:
                return e
        time.sleep(0.5)
    raise AssertionError(f"no PhaseChanged {message!r} for {kind}/{name} within 60s (saw {seen})")


def test_ip_address_and_operation_phase_changes_are_events(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("apply", "-f", "-", input=VMIP)
    apiserver.kubectl("apply", "-f", "-", input=VM)
    apiserver.kubectl("apply", "-f", "-", input=VMOP)
    try:
        # the first cycle allocates the address: straight to Bound
        bound = _wait_phase_event(apiserver, "VirtualMachineIPAddress", "events-ip", "phase (none) -> Bound")
        assert bound["involvedObject"]["kind"] == "VirtualMachineIPAddress" and bound["type"] == "Normal"
        # no other operation on the machine: queued and started in the first cycle
        op = _wait_phase_event(apiserver, "VirtualMachineOperation", "events-op", "phase (none) -> InProgress")
        assert op["involvedObject"]["name"] == "events-op"
    finally:
        apiserver.kubectl("delete", "virtualmachineoperation", "events-op", "-n", "default", "--wait=false")
        apiserver.kubectl("delete", "virtualmachineipaddress", "events-ip", "-n", "default", "--wait=false")
        apiserver.kubectl("delete", "virtualmachine", "events-vm", "-n", "default", "--wait=false")
