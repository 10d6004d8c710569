"""A reconcile always reports, against a real `dvp server`: a handler that fails mid-chain
still leaves its condition and message in the VirtualMachine's status (written through the
status subresource, read back with kubectl), the handlers after it still run, and the key is
retried until the failure clears."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.common.kube.client import KubeClient
from controlplane.common.kube.controller import Controller
from controlplane.common.kube.events import EventRecorder
from controlplane.common.kube.settings import RuntimeSettings
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.vm.prerequisites import ClassHandler
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
FAST = RuntimeSettings(retry_base=0.2, retry_max=0.5, watch_timeout=5, resync_period=3600)


@pytest.fixture
def server(tmp_path: Path, kubectl_path: Path) -> Iterator[ApiServerProcess]:
    """A server whose own controllers are off: the reconciler under test is the only writer."""
    proc = ApiServerProcess(tmp_path / "data", extra_args=["--no-controllers"])
    proc.start()
    yield proc
    proc.stop()


class FailsUntilCleared:
    name = "ipam"
    condition = C.Type.IP_ADDRESS_READY

    def __init__(self) -> None:
        self.calls = 0
        self.failing = True

    def handle(self, state: State) -> None:
        self.calls += 1
        if self.failing:
            raise RuntimeError("the address pool could not be read")
        state.status.setdefault("conditions", [])


class MarksPhase:
    name = "status"

    def handle(self, state: State) -> None:
        state.status["phase"] = "Pending"


def _vm_status(server: ApiServerProcess) -> dict[str, Any]:
    out = server.kubectl("get", "vm", "reporting", "-n", "default", "-o", "json")
    status: dict[str, Any] = json.loads(out.stdout).get("status") or {}
    return status


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def test_a_handler_failing_mid_chain_leaves_its_condition_and_is_retried(server: ApiServerProcess) -> None:
    kube = KubeClient.from_kubeconfig(server.kubeconfig)
    kube.create(VIRTUAL_MACHINES, {
        "apiVersion": VIRTUAL_MACHINES.api_version, "kind": "VirtualMachine",
        "metadata": {"name": "reporting", "namespace": "default"},
        "spec": {"virtualMachineClassName": "nonexistent", "cpu": {"cores": 1}, "memory": {"size": "256Mi"},
                 "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "root"}]}}, "default")
    ctx = Context(kube=kube, settings=PlatformSettings(), recorder=EventRecorder(kube, "test"), runtime=FAST)
    failing = FailsUntilCleared()
    reconciler = Reconciler(ctx, VIRTUAL_MACHINES, [ClassHandler(), failing, MarksPhase()],
                            failure_condition=C.Type.RUNNING)
    controller = Controller("vm-test", reconciler, workers=1, settings=FAST)
    informer = ctx.informer(VIRTUAL_MACHINES)
    informer.add_handler(lambda typ, obj, old: controller.enqueue(("default", obj["metadata"]["name"])))
    informer.start()
    assert informer.wait_synced(30)
    controller.start()
    try:
        deadline = time.monotonic() + 30
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = _vm_status(server)
            if _condition(status, C.Type.IP_ADDRESS_READY) and failing.calls >= 3:
                break
            time.sleep(0.2)
        failed = _condition(status, C.Type.IP_ADDRESS_READY)
        assert failed["status"] == "Unknown" and failed["reason"] == "ReconcileFailed", status
        assert "the address pool could not be read" in failed["message"]
        assert failed["observedGeneration"] == 1
        cls = _condition(status, C.Type.CLASS_READY)
        assert cls["status"] == "False" and "spec.virtualMachineClassName" in cls["message"], \
            "the handler before the failing one reported, with what to do"
        assert status["phase"] == "Pending", "the handler after the failing one ran"
        assert failing.calls >= 3, "the key is retried while the handler fails"
        failing.failing = False  # the next retry succeeds and takes the failure report back
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and \
                _condition(_vm_status(server), C.Type.IP_ADDRESS_READY).get("reason") == "ReconcileFailed":
            time.sleep(0.2)
        cleared = _condition(_vm_status(server), C.Type.IP_ADDRESS_READY)
        assert (cleared["status"], cleared["reason"], cleared["message"]) == ("Unknown", "Unknown", "")
    finally:
        controller.stop()
        informer.stop()
