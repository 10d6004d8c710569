"""An instance's status, built from what is true now: the domain as libvirt reports it, the
DHCP leases dnsmasq handed out, the guest agent, and the hypervisor decision. Pure apart from
its inputs; the reconciler writes the result once per cycle, and only when it changed.

Phase: Terminating (being deleted) > Failed (cannot start as specified, or the start failed) >
Pending (waiting for a volume, image or secret) > Stopping (graceful stop in progress) >
Running (domain active) > Stopped.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from controlplane.api.condition_builder import apply as set_condition
from controlplane.api.instance import InstanceSpec
from controlplane.api.internal import InstanceCondition, InstancePhase, InstanceReason
from controlplane.nodehandler.domains import ABSENT, DomainStatus
from controlplane.nodehandler.domainxml import guest_agent_state
from controlplane.nodehandler.hypervisor import Decision
from controlplane.nodehandler.lifecycle import ts


@dataclass
class Observed:
    """What one reconcile learned, beyond the domain itself."""

    spec: InstanceSpec | None
    spec_error: str = ""
    waiting: str = ""
    """Why the instance cannot start yet (Pending)."""
    start_error: str = ""
    deleting: bool = False
    started_now: bool = False
    message: str = ""


def domain_type_of(xml_text: str) -> str:
    return ET.fromstring(xml_text).get("type", "")


def interfaces(spec: InstanceSpec | None, leases: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for nic in spec.nics if spec else ():
        entry: dict[str, Any] = {"name": nic.name, "mac": nic.mac}
        ip = leases.get(nic.mac)
        if ip:
            entry["ipAddress"] = ip
            entry["ipAddresses"] = [ip]
        out.append(entry)
    return out


def build_status(old: dict[str, Any], updates: dict[str, Any], dom: DomainStatus | None, obs: Observed, *,
                 node: str, generation: int, decision: Decision, leases: dict[str, str],
                 guest_info: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    status = {k: v for k, v in old.items()}
    for k, v in updates.items():
        if v is None:
            status.pop(k, None)
        else:
            status[k] = v
    stamp = ts(now)
    active = dom is not None and dom.active
    status["nodeName"] = node
    status["observedGeneration"] = generation
    status["domainState"] = dom.state_name if dom is not None else ABSENT

    if obs.deleting:
        phase = InstancePhase.TERMINATING
    elif obs.spec_error or (obs.start_error and not active):
        phase = InstancePhase.FAILED
    elif obs.waiting and not active:
        phase = InstancePhase.PENDING
    elif active and status.get("shutdownDeadline"):
        phase = InstancePhase.STOPPING
    elif active:
        phase = InstancePhase.RUNNING
    else:
        phase = InstancePhase.STOPPED
    status["phase"] = str(phase)

    if active:
        if obs.started_now or not status.get("startedAt"):
            status["startedAt"] = stamp
        assert dom is not None
        dtype = domain_type_of(dom.xml)
        status["emulation"] = {"domainType": dtype, "reason": str(decision.reason), "message": decision.message}
    else:
        status.pop("startedAt", None)
        status["emulation"] = {"domainType": str(decision.domain_type), "reason": str(decision.reason),
                               "message": decision.message}
    status["interfaces"] = interfaces(obs.spec, leases) if active else []
    if guest_info:
        status["guestOSInfo"] = guest_info
    elif not active:
        status.pop("guestOSInfo", None)
    message = obs.spec_error or obs.start_error or obs.waiting or obs.message
    if message:
        status["message"] = message
    else:
        status.pop("message", None)

    conds: list[dict[str, Any]] = list(status.get("conditions") or [])

    def cond(type_: InstanceCondition, ok: bool | None, reason: InstanceReason, msg: str) -> None:
        nonlocal conds
        conds = set_condition(conds, str(type_), ok, str(reason), msg, now=stamp, generation=generation)

    cond(InstanceCondition.CONFIGURATION_VALID, not obs.spec_error,
         InstanceReason.INVALID_SPEC if obs.spec_error else InstanceReason.VALID, obs.spec_error)
    if obs.waiting:
        reason = InstanceReason.IMAGE_NOT_READY if "image" in obs.waiting else InstanceReason.VOLUME_NOT_READY
        cond(InstanceCondition.DISKS_READY, False, reason, obs.waiting)
    elif active or obs.started_now:
        cond(InstanceCondition.DISKS_READY, True, InstanceReason.DISKS_READY, "")
    if active:
        assert dom is not None
        cond(InstanceCondition.RUNNING, True, InstanceReason.DOMAIN_RUNNING,
             f"domain {dom.name} is {dom.state_name} ({status['emulation']['domainType']})")
        agent = guest_agent_state(dom.xml)
        cond(InstanceCondition.AGENT_CONNECTED, agent == "connected",
             InstanceReason.AGENT_CONNECTED if agent == "connected" else InstanceReason.AGENT_NOT_CONNECTED,
             "" if agent == "connected" else "no qemu-guest-agent answers on the org.qemu.guest_agent.0 channel")
    else:
        if obs.start_error:
            cond(InstanceCondition.RUNNING, False, InstanceReason.START_FAILED, obs.start_error)
        else:
            why = status.get("stopReason") or ("waiting: " + obs.waiting if obs.waiting else "not started")
            cond(InstanceCondition.RUNNING, False, InstanceReason.DOMAIN_STOPPED, f"domain is not running ({why})")
        conds = [c for c in conds if c.get("type") != InstanceCondition.AGENT_CONNECTED]
    status["conditions"] = conds
    return status


def differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return old != new
