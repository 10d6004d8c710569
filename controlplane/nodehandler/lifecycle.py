"""The power state machine of an instance, as a pure function: `plan()` looks at the desired
state (runState, powerRequest), what status remembers (stopReason, pendingPowerRequest,
handledPowerRequest, shutdownDeadline) and the domain, and says what to do now.

Everything it needs to continue after a crash of the handler is in the instance's status, so a
restarted handler picks up a graceful shutdown, a restart half-way through, or a power request
already done, from there. The rules (docs/nodehandler.md has the table):

- a graceful stop presses the ACPI power button and records `shutdownDeadline`; once it passes,
  the domain is destroyed. A force stop (or a grace period of 0) destroys at once;
- `powerRequest` ids are executed once and echoed in `handledPowerRequest`; a Restart is a
  stop followed by a start (`pendingPowerRequest` marks the half-way point); Stop keeps the
  instance stopped (`stopReason: PowerRequest`) until a Start request; Start on an instance
  whose runState is Stopped is acknowledged and ignored;
- with `runState: Running`, an instance is (re)started unless its last stop holds it stopped
  (any stopReason but Requested: the guest powered off, crashed, was destroyed behind our back,
  or a Stop request) — the VM controller decides about those, through a Start request;
- with `runState: Stopped`, it is stopped gracefully within `shutdownGracePeriodSeconds`;
- an instance without a domain here whose `status.migration` from this node has not ended is
  never started: its domain may run on the migration's target, and only the migration's recovery
  (migrations.py) knows; it waits for that to settle, with a message saying why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import libvirt

from controlplane.api.instance import InstanceSpec
from controlplane.api.internal import InstancePhase, PowerAction, RunState, StopReason
from controlplane.api.migration import TERMINAL, status_of
from controlplane.nodehandler.domains import DomainStatus


class Action(Enum):
    NONE = "none"
    START = "start"
    SHUTDOWN = "shutdown"
    """Press the ACPI power button (again, if this process has not pressed it yet)."""
    DESTROY = "destroy"


@dataclass
class Plan:
    action: Action = Action.NONE
    status: dict[str, Any] = field(default_factory=dict)
    """Status fields to set (None removes a field)."""
    flush_first: bool = False
    """Write `status` before acting (a stop that must be remembered if the handler dies)."""
    requeue_after: float | None = None
    message: str = ""


def ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def stop_reason_of(dom: DomainStatus | None) -> StopReason:
    """Why a domain we did not stop is not running, from libvirt's shut-off reason."""
    reason = dom.shutoff_reason if dom is not None else None
    if dom is not None and dom.state == libvirt.VIR_DOMAIN_CRASHED:
        return StopReason.CRASHED
    if reason == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN:
        return StopReason.GUEST_SHUTDOWN
    if reason in (libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, libvirt.VIR_DOMAIN_SHUTOFF_FAILED):
        return StopReason.CRASHED
    return StopReason.DESTROYED


def _begin_stop(plan: Plan, *, reason: StopReason, grace: int, force: bool, now: dt.datetime,
                pending: str | None = None) -> Plan:
    plan.status.update(stopReason=str(reason), shutdownDeadline=ts(now + dt.timedelta(seconds=grace)))
    if pending is not None:
        plan.status["pendingPowerRequest"] = pending
    plan.flush_first = True
    plan.action = Action.DESTROY if force or grace == 0 else Action.SHUTDOWN
    return plan


def unsettled_migration(status: dict[str, Any], node: str | None) -> str:
    """Why an instance must not be started on `node` (None: whichever node asks) while its
    migration from there has not ended; "" when nothing holds it."""
    st = status_of({"status": status})
    if not st.get("phase") or st["phase"] in TERMINAL or (node is not None and st.get("sourceNode") not in (None, "", node)):
        return ""
    return (f"not started here: live migration {st.get('id')} to node {st.get('targetNode')} has not settled "
            f"(phase {st['phase']}); the domain may run there, the node handler settles the migration first")


def plan(spec: InstanceSpec, status: dict[str, Any], dom: DomainStatus | None, *, now: dt.datetime,
         poll: float, node: str | None = None) -> Plan:
    """`node`: this node's name (an unsettled migration from it holds a start; None: any)."""
    p = Plan()
    active = dom is not None and dom.active
    if not active and (hold := unsettled_migration(status, node)):
        p.message = hold
        return p
    stop_reason = status.get("stopReason")
    deadline = parse_ts(status.get("shutdownDeadline"))

    # A domain that stopped while we believed it running: remember why (it holds the instance).
    if (not active and status.get("phase") in (InstancePhase.RUNNING, InstancePhase.STARTING)
            and deadline is None and stop_reason is None):
        stop_reason = str(stop_reason_of(dom))
        p.status["stopReason"] = stop_reason

    # A graceful stop in progress: wait, press the button, or destroy after the deadline.
    if deadline is not None:
        if active:
            p.action = Action.DESTROY if now >= deadline else Action.SHUTDOWN
            p.requeue_after = poll
            return p
        p.status["shutdownDeadline"] = None
        deadline = None

    pr = spec.power_request
    if pr is not None and pr.id != status.get("handledPowerRequest"):
        grace = pr.grace_period if pr.grace_period is not None else spec.grace_period
        if pr.action is PowerAction.START:
            p.status.update(handledPowerRequest=pr.id, pendingPowerRequest=None)
            if spec.run_state is RunState.STOPPED:
                p.message = f"power request {pr.id} (Start) ignored: runState is Stopped"
                return p
            p.status["stopReason"] = None
            if not active:
                p.action = Action.START
            return p
        if active:
            return _begin_stop(p, reason=StopReason.POWER_REQUEST, grace=grace, force=pr.force, now=now,
                               pending=pr.id)
        # stopped now (by this request, or it found the domain stopped)
        p.status.update(handledPowerRequest=pr.id, pendingPowerRequest=None)
        if spec.run_state is RunState.STOPPED:
            p.status["stopReason"] = str(StopReason.REQUESTED)
            return p
        if pr.action is PowerAction.STOP:
            p.status["stopReason"] = str(StopReason.POWER_REQUEST)
            return p
        p.status["stopReason"] = None  # Restart: start again
        p.action = Action.START
        return p

    if spec.run_state is RunState.STOPPED:
        if active:
            return _begin_stop(p, reason=StopReason.REQUESTED, grace=spec.grace_period, force=False, now=now)
        if stop_reason != StopReason.REQUESTED:
            p.status["stopReason"] = str(StopReason.REQUESTED)
        return p

    if active:
        if stop_reason is not None:
            p.status["stopReason"] = None  # started behind our back, or a stale reason
        return p
    if stop_reason in (None, StopReason.REQUESTED):
        p.status["stopReason"] = None
        p.action = Action.START
    return p


def plan_deletion(spec: InstanceSpec, status: dict[str, Any], dom: DomainStatus | None, *, now: dt.datetime,
                  poll: float) -> Plan:
    """Stop the domain as `runState: Stopped` would (graceful within the grace period)."""
    stopped = InstanceSpec(**{**spec.__dict__, "run_state": RunState.STOPPED, "power_request": None})
    return plan(stopped, status, dom, now=now, poll=poll)
