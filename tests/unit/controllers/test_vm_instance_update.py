"""The VM controller's instance update (InstanceHandler._update), table-driven like the node
handler's `lifecycle.plan`: for each run policy, instance state, power request and hardware
change, what the controller writes into the instance spec and the VM's status."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vm import requests
from controlplane.controllers.vm.instance import InstanceHandler


class RecordingKube:
    def __init__(self) -> None:
        self.replaced: list[dict[str, Any]] = []

    def replace(self, resource: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.replaced.append(copy.deepcopy(body))
        return body


class Ctx:
    def __init__(self) -> None:
        self.kube = RecordingKube()


HW = {"nodeName": "n1", "hostname": "vm", "cpu": {"cores": 1, "model": "host-model", "coreFraction": "100%"},
      "memory": {"size": "1Gi"}, "disks": [{"name": "vd-root", "volume": {"name": "root"}, "bus": "virtio",
                                            "bootOrder": 1}]}
BIGGER = {**HW, "memory": {"size": "2Gi"}}

# id, runPolicy, spec.runState, instance phase, stopReason, VM power request, desired hardware, approval
#   -> runState written, powerRequest action written (None: none new), awaiting restart, instance written
CASES: list[tuple[str, str, str, str, str | None, dict[str, Any] | None, dict[str, Any], bool,
                  str, str | None, bool, bool]] = [
    ("running-unchanged", "AlwaysOnUnlessStoppedManually", "Running", "Running", None, None, HW, False,
     "Running", None, False, False),
    ("always-off-stops", "AlwaysOff", "Running", "Running", None, None, HW, False,
     "Stopped", None, False, True),
    ("always-on-starts", "AlwaysOn", "Stopped", "Stopped", "Requested", None, HW, False,
     "Running", None, False, True),
    ("guest-poweroff-always-on-autostarts", "AlwaysOn", "Running", "Stopped", "GuestShutdown", None, HW, False,
     "Running", "Start", False, True),
    ("guest-poweroff-manual-stays-off", "Manual", "Running", "Stopped", "GuestShutdown", None, HW, False,
     "Stopped", None, False, True),
    ("crash-default-policy-stays-off", "AlwaysOnUnlessStoppedManually", "Running", "Stopped", "Crashed", None, HW,
     False, "Stopped", None, False, True),
    ("stop-request", "AlwaysOnUnlessStoppedManually", "Running", "Running", None,
     {"id": "s1", "action": "Stop"}, HW, False, "Stopped", "Stop", False, True),
    ("stop-request-always-on-keeps-running", "AlwaysOn", "Running", "Running", None,
     {"id": "s1", "action": "Stop"}, HW, False, "Running", "Stop", False, True),
    ("start-request", "Manual", "Stopped", "Stopped", "Requested", {"id": "st1", "action": "Start"}, HW, False,
     "Running", "Start", False, True),
    ("handled-request-is-not-repeated", "AlwaysOnUnlessStoppedManually", "Running", "Running", None,
     {"id": "done", "action": "Stop"}, HW, False, "Running", None, False, False),
    ("change-while-running-waits-for-restart", "AlwaysOnUnlessStoppedManually", "Running", "Running", None, None,
     BIGGER, False, "Running", None, True, False),
    ("change-while-running-automatic-restarts", "AlwaysOnUnlessStoppedManually", "Running", "Running", None, None,
     BIGGER, True, "Running", "Restart", False, True),
    ("change-while-stopped-applies", "Manual", "Stopped", "Stopped", "Requested", None, BIGGER, False,
     "Stopped", None, False, True),
    ("change-with-restart-request-applies", "AlwaysOnUnlessStoppedManually", "Running", "Running", None,
     {"id": "r1", "action": "Restart"}, BIGGER, False, "Running", "Restart", False, True),
]


@pytest.mark.parametrize(
    "policy, run_state, phase, stop_reason, power, desired, approve, want_run, want_action, awaiting, written",
    [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_instance_update(policy: str, run_state: str, phase: str, stop_reason: str | None,
                         power: dict[str, Any] | None, desired: dict[str, Any], approve: bool, want_run: str,
                         want_action: str | None, awaiting: bool, written: bool) -> None:
    vm: dict[str, Any] = {"metadata": {"name": "vm", "namespace": "ns", "uid": "0123456789", "generation": 4,
                                       "resourceVersion": "7", "annotations": {}},
                          "spec": {"runPolicy": policy}, "status": {}}
    if approve:
        vm["spec"]["disruptions"] = {"restartApprovalMode": "Automatic"}
    if power:
        vm["metadata"]["annotations"][requests.ANNOTATION] = requests.encode(id=power["id"],
                                                                             action=power["action"], force=False)
    inst_status: dict[str, Any] = {"phase": phase, "handledPowerRequest": "done"}
    if stop_reason:
        inst_status["stopReason"] = stop_reason
    inst: dict[str, Any] = {"metadata": {"name": "vm", "namespace": "ns", "resourceVersion": "11"},
            "spec": {**copy.deepcopy(HW), "runState": run_state}, "status": inst_status}
    ctx = Ctx()
    state = State(ctx, VIRTUAL_MACHINES, vm)  # type: ignore[arg-type]
    InstanceHandler()._update(state, inst, copy.deepcopy(desired))

    assert bool(ctx.kube.replaced) == written
    spec = ctx.kube.replaced[-1]["spec"] if written else inst["spec"]
    assert spec["runState"] == want_run
    new_request = spec.get("powerRequest")
    assert (new_request or {}).get("action") == want_action
    if power and want_action:
        assert new_request is not None and new_request["id"] == power["id"]
    assert bool(state.status.get("restartAwaitingChanges")) == awaiting
    assert conditions.is_true(state.status, C.Type.AWAITING_RESTART_TO_APPLY_CONFIGURATION) == awaiting
    applied = spec["memory"] == desired["memory"]
    assert applied != awaiting, "a change is either applied or awaiting a restart"


def test_the_schema_defaults_the_api_server_stored_are_no_change() -> None:
    """The stored instance holds the schema's defaults (cpu.sockets, vnc, ...) the controller never
    writes: a cycle that wants what is stored does not PUT the instance again."""
    vm: dict[str, Any] = {"metadata": {"name": "vm", "namespace": "ns", "uid": "0123456789", "generation": 4,
                                       "resourceVersion": "7", "annotations": {}},
                          "spec": {"runPolicy": "Manual"}, "status": {}}
    stored: dict[str, Any] = copy.deepcopy(HW)
    stored["cpu"].update(sockets=1, threads=1)
    stored.update(vnc=True, firmware="BIOS", runState="Stopped")
    inst: dict[str, Any] = {"metadata": {"name": "vm", "namespace": "ns", "resourceVersion": "11"},
                            "spec": stored, "status": {"phase": "Stopped", "stopReason": "Requested"}}
    ctx = Ctx()
    InstanceHandler()._update(State(ctx, VIRTUAL_MACHINES, vm), inst, copy.deepcopy(HW))  # type: ignore[arg-type]
    assert ctx.kube.replaced == []
    InstanceHandler()._update(State(ctx, VIRTUAL_MACHINES, vm), inst, copy.deepcopy(BIGGER))  # type: ignore[arg-type]
    assert [r["spec"]["memory"] for r in ctx.kube.replaced] == [{"size": "2Gi"}]
