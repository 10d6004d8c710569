"""The instance's status, as the VirtualMachine shows it: phase, node, IP, guest OS,
resources, phase transitions, and the Running and AgentReady conditions."""

from __future__ import annotations

from typing import Any

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import INSTANCES
from controlplane.api.v1alpha2 import MachinePhase as Phase
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.controllers.runtime.state import State
from controlplane.controllers.vm.instance import disk_name

_FROM_INSTANCE = {"Pending": Phase.STARTING, "Starting": Phase.STARTING, "Running": Phase.RUNNING,
                  "Stopping": Phase.STOPPING, "Stopped": Phase.STOPPED, "Failed": Phase.DEGRADED,
                  "Terminating": Phase.TERMINATING}


def phase_of(state: State, inst: dict[str, Any] | None) -> str:
    if state.deleting:
        return Phase.TERMINATING
    if inst is None:
        return Phase.PENDING
    spec, status = inst.get("spec") or {}, inst.get("status") or {}
    phase = _FROM_INSTANCE.get(status.get("phase") or "Pending", Phase.PENDING)
    if spec.get("runState") == "Stopped" and phase in (Phase.STARTING, Phase.RUNNING):
        return Phase.STOPPING
    if spec.get("runState") == "Running" and phase == Phase.STOPPED and status.get("stopReason") in (None, "Requested"):
        return Phase.STARTING  # about to be started; any other stopReason holds it stopped
    return phase


class StatusHandler:
    name = "status"

    def handle(self, state: State) -> None:
        inst = state.get(INSTANCES, state.name)
        inst_status = (inst or {}).get("status") or {}
        phase = phase_of(state, inst)
        if state.status.get("phase") != phase:
            transitions = list((state.status.get("stats") or {}).get("phasesTransitions") or [])
            transitions.append({"phase": phase, "timestamp": conditions.timestamp()})
            state.status.setdefault("stats", {})["phasesTransitions"] = transitions[-20:]
        state.status["phase"] = phase
        if inst_status.get("startedAt"):
            state.status.setdefault("stats", {})["lastStartTime"] = inst_status["startedAt"]
        if inst_status.get("guestOSInfo"):
            state.status["guestOSInfo"] = inst_status["guestOSInfo"]
        ips = [i.get("ipAddress") for i in inst_status.get("interfaces") or [] if i.get("ipAddress")]
        if ips:
            state.status["ipAddress"] = ips[0]
        spec = state.spec
        cpu = spec.get("cpu") or {}
        fraction = cpu.get("coreFraction") or "100%"
        cores = int(cpu.get("cores") or 1)
        requested = cores * (100 if fraction == "Auto" else int(str(fraction).rstrip("%"))) / 100
        state.status["resources"] = {
            "cpu": {"cores": cores, "coreFraction": fraction, "requestedCores": f"{int(requested * 1000)}m",
                    "topology": {"sockets": 1, "coresPerSocket": cores}},
            "memory": {"size": (spec.get("memory") or {}).get("size")},
        }
        attached = {d.get("name") for d in ((inst or {}).get("spec") or {}).get("disks") or []}
        for ref in state.status.get("blockDeviceRefs") or []:

            ref["attached"] = phase in (Phase.RUNNING, Phase.STOPPING) and disk_name(ref["kind"], ref["name"]) in attached
        if phase == Phase.RUNNING:
            conditions.set_condition(state.status, C.Type.RUNNING, True, C.RunningReason.VIRTUAL_MACHINE_RUNNING, "",
                                     generation=state.generation)
        elif inst is not None or conditions.get(state.status, C.Type.RUNNING) is None:
            message = inst_status.get("message") or (f"instance is {inst_status.get('phase', 'Pending')}" if inst else
                                                     "waiting for the machine's prerequisites")
            conditions.set_condition(state.status, C.Type.RUNNING, False, C.RunningReason.VIRTUAL_MACHINE_NOT_RUNNING,
                                     message, generation=state.generation)
        agent = next((c for c in inst_status.get("conditions") or [] if c.get("type") == "AgentReady"), None)
        conditions.set_condition(state.status, C.Type.AGENT_READY, bool(agent and agent.get("status") == "True"),
                                 C.AgentReadyReason.AGENT_READY if agent and agent.get("status") == "True"
                                 else C.AgentReadyReason.AGENT_NOT_READY,
                                 (agent or {}).get("message", "the QEMU guest agent is not connected"),
                                 generation=state.generation)
        state.status["observedGeneration"] = state.generation
