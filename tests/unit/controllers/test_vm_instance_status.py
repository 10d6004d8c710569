"""The VM controller's reading of its instance: what counts as a change needing a restart
(schema defaults the API server fills in do not), and which phase a stopped instance shows."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vm.instance import _changes, _covers
from controlplane.controllers.vm.status import phase_of


def _state(**meta: Any) -> State:
    return State(None, VIRTUAL_MACHINES, {"metadata": {"name": "vm", "namespace": "default", **meta},  # type: ignore[arg-type]
                                          "spec": {}})


def test_defaults_filled_in_by_the_server_are_not_changes() -> None:
    desired = {"cpu": {"cores": 1, "model": "Nehalem", "coreFraction": "100%"}, "memory": {"size": "256Mi"},
               "disks": [{"name": "vd-root", "volume": {"name": "root"}, "bus": "virtio", "bootOrder": 1}]}
    stored = {"cpu": {"cores": 1, "model": "Nehalem", "coreFraction": "100%", "sockets": 1, "threads": 1},
              "memory": {"size": "256Mi"},
              "disks": [{"name": "vd-root", "volume": {"name": "root"}, "bus": "virtio", "bootOrder": 1,
                         "readOnly": False}]}
    assert _covers(stored, desired)
    assert _changes(stored, desired) == []


@pytest.mark.parametrize("edit, path", [
    (lambda d: d["cpu"].update(cores=2), "cpu"),
    (lambda d: d.update(memory={"size": "512Mi"}), "memory"),
    (lambda d: d["disks"].append({"name": "vd-data", "volume": {"name": "data"}}), "disks"),
    (lambda d: d.pop("cloudInit"), "cloudInit"),
])
def test_real_changes_are_listed(edit: Any, path: str) -> None:
    stored = {"cpu": {"cores": 1, "sockets": 1}, "memory": {"size": "256Mi"}, "cloudInit": {"userData": "x"},
              "disks": [{"name": "vd-root", "volume": {"name": "root"}}]}
    desired = {"cpu": {"cores": 1}, "memory": {"size": "256Mi"}, "cloudInit": {"userData": "x"},
               "disks": [{"name": "vd-root", "volume": {"name": "root"}}]}
    edit(desired)
    assert [c["path"] for c in _changes(stored, desired)] == [path]


@pytest.mark.parametrize("run_state, inst_phase, stop_reason, expected", [
    ("Running", "Running", None, "Running"),
    ("Running", "Stopped", None, "Starting"),          # created, not started yet
    ("Running", "Stopped", "GuestShutdown", "Stopped"),  # the guest powered off: held stopped
    ("Running", "Stopped", "PowerRequest", "Stopped"),
    ("Running", "Stopped", "Crashed", "Stopped"),
    ("Stopped", "Running", None, "Stopping"),
    ("Stopped", "Stopped", "Requested", "Stopped"),
    ("Running", "Failed", None, "Degraded"),
])
def test_phase_from_the_instance(run_state: str, inst_phase: str, stop_reason: str | None, expected: str) -> None:
    status: dict[str, Any] = {"phase": inst_phase}
    if stop_reason:
        status["stopReason"] = stop_reason
    assert phase_of(_state(), {"spec": {"runState": run_state}, "status": status}) == expected


def test_phase_without_instance_and_while_deleting() -> None:
    assert phase_of(_state(), None) == "Pending"
    assert phase_of(_state(deletionTimestamp="2026-01-01T00:00:00Z"), None) == "Terminating"
