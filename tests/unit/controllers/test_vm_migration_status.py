"""The VM's view of live migration (controllers/vm/migration_status.py): Migratable with the
reason, phase Migrating while a requested migration runs, and migrationState from the instance."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINES
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vm.migration_status import MigrationStatusHandler, blockers


class Ctx:
    def __init__(self, inst: dict[str, Any] | None) -> None:
        self.inst = inst

    def cached(self, res: Any, ns: str, name: str) -> dict[str, Any] | None:
        return self.inst if res is INSTANCES else None


def _inst(*, disks: list[dict[str, Any]] | None = None, node: str = "n1", migration: dict[str, Any] | None = None,
          status: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "disks": disks or []}
    if migration:
        spec["migration"] = migration
    return {"metadata": {"name": "vm", "namespace": "ns"}, "spec": spec,
            "status": {"migration": status} if status else {}}


def _run(inst: dict[str, Any] | None, phase: str = "Running") -> State:
    vm = {"metadata": {"name": "vm", "namespace": "ns", "generation": 2}, "spec": {}, "status": {"phase": phase}}
    state = State(Ctx(inst), VIRTUAL_MACHINES, copy.deepcopy(vm))  # type: ignore[arg-type]
    MigrationStatusHandler().handle(state)
    return state


def _cond(state: State, type_: str) -> dict[str, Any] | None:
    return next((c for c in state.status.get("conditions") or [] if c["type"] == type_), None)


@pytest.mark.parametrize("disks,why", [
    ([{"name": "root", "volume": {"name": "r"}}], None),
    ([{"name": "iso", "image": {"ref": "dvcr.local/cvi/debian:latest"}, "cdrom": True}], None),
    ([{"name": "iso", "image": {"ref": "file:///srv/iso/install.iso"}, "cdrom": True}], "local ISO /srv/iso/install.iso"),
], ids=["volume", "cdrom-from-dvcr", "cdrom-from-local-iso"])
def test_migratable_names_what_keeps_the_vm_in_place(disks: list[dict[str, Any]], why: str | None) -> None:
    state = _run(_inst(disks=disks))
    cond = _cond(state, "Migratable")
    assert cond is not None
    if why is None:
        assert (cond["status"], cond["reason"]) == ("True", "VirtualMachineMigratable")
    else:
        assert (cond["status"], cond["reason"]) == ("False", "VirtualMachineNonMigratable") and why in cond["message"]
    assert blockers(_inst(disks=disks)) == ([] if why is None else [cond["message"]])


def test_a_usb_device_keeps_the_vm_on_its_node() -> None:
    inst = _inst(disks=[{"name": "root", "volume": {"name": "r"}}])
    inst["spec"]["usbDevices"] = [{"name": "token", "vendorID": "046d", "productID": "c52b", "bus": 1, "device": 4}]
    cond = _cond(_run(inst), "Migratable")
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", "VirtualMachineNonMigratable")
    assert "USB device token" in cond["message"] and "spec.usbDevices" in cond["message"]


def test_phase_migrating_and_migration_state() -> None:
    req = {"id": "u1", "targetNode": "n2"}
    status = {"id": "u1", "phase": "Migrating", "sourceNode": "n1", "targetNode": "n2",
              "startTimestamp": "2026-01-01T00:00:00Z"}
    state = _run(_inst(migration=req, status=status))
    assert state.status["phase"] == "Migrating"
    assert state.status["migrationState"] == {"source": {"node": "n1"}, "target": {"node": "n2"},
                                              "startTimestamp": "2026-01-01T00:00:00Z", "endTimestamp": None,
                                              "result": ""}
    assert (_cond(state, "Migrating") or {}).get("status") == "True"
    done = {**status, "phase": "Succeeded", "result": "Succeeded", "endTimestamp": "2026-01-01T00:00:09Z"}
    state = _run(_inst(node="n2", migration=req, status=done))
    assert state.status["phase"] == "Running" and _cond(state, "Migrating") is None
    assert state.status["migrationState"]["result"] == "Succeeded"
    failed = {**status, "phase": "Failed", "result": "Failed", "reason": "NotConverging", "message": "no progress"}
    state = _run(_inst(migration=req, status=failed))
    assert state.status["phase"] == "Running"
    assert state.status["migrationState"]["reason"] == "NotConverging"
