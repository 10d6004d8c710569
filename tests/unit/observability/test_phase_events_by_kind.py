"""Which phase change of which kind emits what, as the controllers wire it; phase events
still fire when a handler stops the cycle early; the node handler's events reach the user's
VirtualMachine / VirtualDisk as well as the internal object."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from controlplane.api import resources as R
from controlplane.common.kube.client import Resource
from controlplane.controllers.disk import controller as disk
from controlplane.controllers.image import controller as image
from controlplane.controllers.ipam import vmip
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vm import controller as vm
from controlplane.controllers.vmop import controller as vmop
from controlplane.nodehandler.user_events import UserEventRecorder, user_owner
from tests.unit.controllers.recorders import CollectedEvents

N, W = "Normal", "Warning"


def _events(wired: PhaseEvents, resource: Resource, old: str | None, new: str) -> list[tuple[str, str, str]]:
    recorded: list[tuple[str, str, str]] = []
    ctx = SimpleNamespace(recorder=SimpleNamespace(
        record=lambda obj, **kw: recorded.append((obj["kind"], kw["type"], kw["message"]))))
    current = {"kind": resource.kind, "metadata": {"name": "x", "namespace": "ns", "uid": "u"},
               "status": {"phase": old} if old else {}}
    state = State(ctx, resource, current)  # type: ignore[arg-type]
    state.changed["status"]["phase"] = new
    state.changed["status"]["conditions"] = [{"type": "Ready", "status": "False", "message": "why"}]
    wired.handle(state)
    return recorded


@pytest.mark.parametrize(("wired", "resource", "old", "new", "expected"), [
    (vm.PHASE_EVENTS, R.VIRTUAL_MACHINES, "Starting", "Running", (N, "phase Starting -> Running")),
    (vm.PHASE_EVENTS, R.VIRTUAL_MACHINES, "Running", "Degraded", (W, "phase Running -> Degraded: why")),
    (vm.PHASE_EVENTS, R.VIRTUAL_MACHINES, "Running", "Terminating", (N, "phase Running -> Terminating")),
    (disk.PHASE_EVENTS, R.VIRTUAL_DISKS, "Provisioning", "Ready", (N, "phase Provisioning -> Ready")),
    (disk.PHASE_EVENTS, R.VIRTUAL_DISKS, "Ready", "PVCLost", (W, "phase Ready -> PVCLost: why")),
    (image.PHASE_EVENTS, R.VIRTUAL_IMAGES, None, "Pending", (N, "phase (none) -> Pending")),
    (image.PHASE_EVENTS, R.VIRTUAL_IMAGES, "Pending", "WaitForUserUpload", (N, "phase Pending -> WaitForUserUpload")),
    (image.PHASE_EVENTS, R.VIRTUAL_IMAGES, "Provisioning", "Failed", (W, "phase Provisioning -> Failed: why")),
    (image.PHASE_EVENTS, R.CLUSTER_VIRTUAL_IMAGES, "Provisioning", "Ready", (N, "phase Provisioning -> Ready")),
    (image.PHASE_EVENTS, R.CLUSTER_VIRTUAL_IMAGES, "Ready", "ImageLost", (W, "phase Ready -> ImageLost: why")),
    (vmip.PHASE_EVENTS, R.VIRTUAL_MACHINE_IP_ADDRESSES, "Pending", "Bound", (N, "phase Pending -> Bound")),
    (vmip.PHASE_EVENTS, R.VIRTUAL_MACHINE_IP_ADDRESSES, "Bound", "Attached", (N, "phase Bound -> Attached")),
    (vmip.PHASE_EVENTS, R.VIRTUAL_MACHINE_IP_ADDRESSES, "Attached", "Bound", (N, "phase Attached -> Bound")),
    (vmip.PHASE_EVENTS, R.VIRTUAL_MACHINE_IP_ADDRESSES, "Attached", "Pending", (W, "phase Attached -> Pending: why")),
    (vmip.PHASE_EVENTS, R.VIRTUAL_MACHINE_IP_ADDRESSES, "Bound", "Pending", (W, "phase Bound -> Pending: why")),
    (vmop.PHASE_EVENTS, R.VIRTUAL_MACHINE_OPERATIONS, "Pending", "InProgress", (N, "phase Pending -> InProgress")),
    (vmop.PHASE_EVENTS, R.VIRTUAL_MACHINE_OPERATIONS, "InProgress", "Completed", (N, "phase InProgress -> Completed")),
    (vmop.PHASE_EVENTS, R.VIRTUAL_MACHINE_OPERATIONS, "InProgress", "Failed", (W, "phase InProgress -> Failed: why")),
])
def test_phase_change_by_kind(wired: PhaseEvents, resource: Resource, old: str | None, new: str,
                              expected: tuple[str, str]) -> None:
    assert _events(wired, resource, old, new) == [(resource.kind, *expected)]


class _Stopper:
    name = "stopper"

    def handle(self, state: State) -> None:
        state.status["phase"] = "Failed"
        state.stop = True


class _Never:
    name = "never"

    def handle(self, state: State) -> None:
        raise AssertionError("the chain went on after a stop")


def test_after_handlers_run_when_the_chain_stopped() -> None:
    current = {"kind": "VirtualMachineOperation", "metadata": {"name": "op", "namespace": "ns", "uid": "u",
                                                               "resourceVersion": "1"}, "status": {"phase": "InProgress"}}
    written: list[dict[str, Any]] = []

    def replace(resource: Resource, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        written.append(body)
        return body

    recorder = CollectedEvents()
    ctx = SimpleNamespace(cached=lambda *a: current, recorder=recorder, kube=SimpleNamespace(replace=replace))
    rec = Reconciler(ctx, R.VIRTUAL_MACHINE_OPERATIONS, [_Stopper(), _Never()],  # type: ignore[arg-type]
                     after=[vmop.PHASE_EVENTS])
    rec(("ns", "op"))
    assert [(e["type"], e["message"]) for e in recorder.events] == [("Warning", "phase InProgress -> Failed")]
    assert written[0]["status"]["phase"] == "Failed"


INSTANCE = {"apiVersion": "internal.virtualization.deckhouse.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": "vm-a", "namespace": "ns", "uid": "i-1",
                         "ownerReferences": [{"apiVersion": "virtualization.deckhouse.io/v1alpha2",
                                              "kind": "VirtualMachine", "name": "a", "uid": "vm-1",
                                              "controller": True}]}}


class _Kube:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def get_or_none(self, *a: Any) -> None:
        return None

    def create(self, resource: Any, body: dict[str, Any], ns: str) -> dict[str, Any]:
        self.created.append(body)
        return body


def test_node_handler_events_land_on_the_users_object_too() -> None:
    kube = _Kube()
    recorder = UserEventRecorder(kube, "dvp-node-handler", host="n1")  # type: ignore[arg-type]
    recorder.record(INSTANCE, type="Normal", reason="Started", message="domain started")
    assert recorder.flush()
    involved = [(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["involvedObject"]["uid"], e["reason"])
                for e in kube.created]
    assert involved == [("VirtualMachineInstance", "vm-a", "i-1", "Started"), ("VirtualMachine", "a", "vm-1", "Started")]
    assert kube.created[1]["involvedObject"]["namespace"] == "ns"


def test_node_handler_events_are_written_off_the_start_path() -> None:
    """A slow API server does not hold the instance's status back behind its Started events."""
    kube, release = _Kube(), threading.Event()
    create = kube.create

    def slow_create(resource: Any, body: dict[str, Any], ns: str) -> dict[str, Any]:
        release.wait(5)
        return create(resource, body, ns)

    kube.create = slow_create  # type: ignore[method-assign]
    recorder = UserEventRecorder(kube, "dvp-node-handler", host="n1")  # type: ignore[arg-type]
    recorder.record(INSTANCE, type="Normal", reason="Started", message="domain started")
    assert kube.created == []  # record returned while the first write still waits
    release.set()
    assert recorder.flush()
    assert [e["reason"] for e in kube.created] == ["Started", "Started"]


@pytest.mark.parametrize(("refs", "kind"), [
    ([{"kind": "VirtualDisk", "name": "d", "uid": "1", "apiVersion": "v"}], "VirtualDisk"),
    ([{"kind": "Node", "name": "n", "uid": "1"}], None),
    ([], None),
    ([{"kind": "VirtualMachine", "name": "a", "uid": "1", "controller": False}], None),
])
def test_user_owner(refs: list[dict[str, Any]], kind: str | None) -> None:
    owner = user_owner({"metadata": {"name": "x", "namespace": "ns", "ownerReferences": refs}})
    assert (owner or {}).get("kind") == kind
