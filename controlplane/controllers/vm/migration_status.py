"""Live migration as the VirtualMachine shows it (runs after the status handler):

- `status.migrationState` from the instance's `status.migration` (source and target node, start,
  end, result, and our reason and message);
- phase `Migrating` while a requested migration has not ended (the VM runs all along);
- condition `Migratable` (and `Migrating`): a machine that cannot move live says why — a CD-ROM
  from a local ISO file (only images in DVCR can be pulled on another node), a host device, or a
  USB device passed through from the node's port.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.migration import TERMINAL, MigrationRequest, status_of
from controlplane.api.resources import INSTANCES
from controlplane.api.v1alpha2 import MachinePhase as Phase
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.controllers.runtime.state import State


def blockers(inst: dict[str, Any] | None) -> list[str]:
    """Why the machine cannot migrate live (empty: it can)."""
    out: list[str] = []
    spec = (inst or {}).get("spec") or {}
    for disk in spec.get("disks") or []:
        ref = str((disk.get("image") or {}).get("ref") or "")
        if disk.get("cdrom") and ref.startswith("file://"):
            out.append(f"disk {disk.get('name')} is a CD-ROM from the local ISO {ref[len('file://'):]}, which no other "
                       "node has: detach it or import the ISO as a VirtualImage")
    for dev in spec.get("hostDevices") or []:
        out.append(f"host device {dev.get('name') or dev} is attached: it cannot follow the machine to another node")
    for usb in spec.get("usbDevices") or []:
        out.append(f"USB device {usb.get('name') or usb} is passed through from this node's port: it cannot follow "
                   "the machine to another node; remove it from spec.usbDevices (it applies at the next restart)")
    return out


def migration_state(inst: dict[str, Any]) -> dict[str, Any] | None:
    st = status_of(inst)
    if not st.get("id"):
        return None
    out: dict[str, Any] = {"source": {"node": st.get("sourceNode", "")}, "target": {"node": st.get("targetNode", "")},
                           "startTimestamp": st.get("startTimestamp"), "endTimestamp": st.get("endTimestamp"),
                           "result": st.get("result", "")}
    for key in ("reason", "message"):
        if st.get(key):
            out[key] = st[key]
    return out


def migrating(inst: dict[str, Any] | None) -> bool:
    req = MigrationRequest.parse((inst or {}).get("spec") or {})
    if req is None or (inst or {}).get("spec", {}).get("nodeName") == req.target_node:
        return False
    return status_of(inst or {}, req.id).get("phase") not in TERMINAL


class MigrationStatusHandler:
    name = "migration-status"

    def handle(self, state: State) -> None:
        inst = state.get(INSTANCES, state.name)
        if inst is not None and (ms := migration_state(inst)) is not None:
            state.status["migrationState"] = ms
        why = blockers(inst)
        conditions.set_condition(state.status, C.Type.MIGRATABLE, not why,
                                 C.MigratableReason.NON_MIGRATABLE if why else C.MigratableReason.MIGRATABLE,
                                 "; ".join(why), generation=state.generation)
        if migrating(inst) and state.status.get("phase") == Phase.RUNNING:
            state.status["phase"] = Phase.MIGRATING
            transitions = list((state.status.get("stats") or {}).get("phasesTransitions") or [])
            if transitions and transitions[-1].get("phase") == Phase.RUNNING and \
                    (state.current.get("status") or {}).get("phase") == Phase.MIGRATING:
                transitions.pop()  # the status handler saw Running again: not a real transition
            if not transitions or transitions[-1].get("phase") != Phase.MIGRATING:
                transitions.append({"phase": Phase.MIGRATING, "timestamp": conditions.timestamp()})
            state.status.setdefault("stats", {})["phasesTransitions"] = transitions[-20:]
            conditions.set_condition(state.status, C.Type.MIGRATING, True, C.MigratingReason.IN_PROGRESS,
                                     f"to node {(inst or {}).get('spec', {}).get('migration', {}).get('targetNode')}",
                                     generation=state.generation)
        else:
            conditions.remove(state.status, C.Type.MIGRATING)
