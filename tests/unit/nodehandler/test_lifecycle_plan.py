"""The power state machine (lifecycle.plan), table-driven: what the handler does for each
combination of desired state, remembered status and domain state."""

from __future__ import annotations

import datetime as dt
from typing import Any

import libvirt
import pytest

from controlplane.api.instance import parse_instance
from controlplane.nodehandler.domains import DomainStatus
from controlplane.nodehandler.lifecycle import Action, plan, plan_deletion, ts

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
LATER = ts(NOW + dt.timedelta(seconds=30))
EARLIER = ts(NOW - dt.timedelta(seconds=1))

RUNNING = DomainStatus("d", libvirt.VIR_DOMAIN_RUNNING, 1, "<domain/>")
GUEST_OFF = DomainStatus("d", libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN, "<domain/>")
DESTROYED = DomainStatus("d", libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED, "<domain/>")
CRASHED = DomainStatus("d", libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, "<domain/>")


def _spec(run: str = "Running", power: dict[str, Any] | None = None, grace: int = 30) -> Any:
    spec: dict[str, Any] = {"nodeName": "n", "runState": run, "cpu": {"cores": 1}, "memory": {"size": "64Mi"},
                            "shutdownGracePeriodSeconds": grace}
    if power:
        spec["powerRequest"] = power
    return parse_instance({"metadata": {"name": "vm", "namespace": "ns"}, "spec": spec})


R1 = {"id": "r1", "action": "Restart"}
S1 = {"id": "s1", "action": "Stop"}
F1 = {"id": "f1", "action": "Stop", "force": True}
G1 = {"id": "g1", "action": "Stop", "gracePeriodSeconds": 0}
ST1 = {"id": "st1", "action": "Start"}

# id, runState, powerRequest, status, domain -> action, status updates (subset), flush first
CASES: list[tuple[str, str, dict[str, Any] | None, dict[str, Any], DomainStatus | None, Action, dict[str, Any], bool]] = [
    ("new-instance-starts", "Running", None, {}, None, Action.START, {"stopReason": None}, False),
    ("running-stays", "Running", None, {"phase": "Running"}, RUNNING, Action.NONE, {}, False),
    ("stopped-desired-running-starts", "Running", None, {"phase": "Stopped", "stopReason": "Requested"}, DESTROYED,
     Action.START, {"stopReason": None}, False),
    ("guest-poweroff-is-held", "Running", None, {"phase": "Running"}, GUEST_OFF, Action.NONE,
     {"stopReason": "GuestShutdown"}, False),
    ("crash-is-held", "Running", None, {"phase": "Running"}, CRASHED, Action.NONE, {"stopReason": "Crashed"}, False),
    ("destroyed-behind-our-back-is-held", "Running", None, {"phase": "Running"}, DESTROYED, Action.NONE,
     {"stopReason": "Destroyed"}, False),
    ("held-stays-stopped", "Running", None, {"phase": "Stopped", "stopReason": "GuestShutdown"}, GUEST_OFF,
     Action.NONE, {}, False),
    ("run-state-stopped-presses-acpi", "Stopped", None, {"phase": "Running"}, RUNNING, Action.SHUTDOWN,
     {"stopReason": "Requested", "shutdownDeadline": LATER}, True),
    ("shutdown-in-progress-waits", "Stopped", None, {"phase": "Stopping", "shutdownDeadline": LATER}, RUNNING,
     Action.SHUTDOWN, {}, False),
    ("deadline-passed-destroys", "Stopped", None, {"phase": "Stopping", "shutdownDeadline": EARLIER}, RUNNING,
     Action.DESTROY, {}, False),
    ("shutdown-done-clears-deadline", "Stopped", None,
     {"phase": "Stopping", "shutdownDeadline": LATER, "stopReason": "Requested"}, GUEST_OFF, Action.NONE,
     {"shutdownDeadline": None}, False),
    ("restart-begins-with-a-stop", "Running", R1, {"phase": "Running"}, RUNNING, Action.SHUTDOWN,
     {"pendingPowerRequest": "r1", "stopReason": "PowerRequest", "shutdownDeadline": LATER}, True),
    ("restart-half-way-starts-again", "Running", R1,
     {"phase": "Stopping", "pendingPowerRequest": "r1", "shutdownDeadline": LATER, "stopReason": "PowerRequest"},
     GUEST_OFF, Action.START, {"handledPowerRequest": "r1", "pendingPowerRequest": None, "stopReason": None,
                               "shutdownDeadline": None}, False),
    ("restart-handled-is-not-repeated", "Running", R1, {"phase": "Running", "handledPowerRequest": "r1"}, RUNNING,
     Action.NONE, {}, False),
    ("force-stop-destroys", "Running", F1, {"phase": "Running"}, RUNNING, Action.DESTROY,
     {"pendingPowerRequest": "f1", "stopReason": "PowerRequest"}, True),
    ("zero-grace-destroys", "Running", G1, {"phase": "Running"}, RUNNING, Action.DESTROY,
     {"pendingPowerRequest": "g1", "shutdownDeadline": ts(NOW)}, True),
    ("stop-done-holds", "Running", S1, {"phase": "Stopping", "pendingPowerRequest": "s1", "shutdownDeadline": LATER},
     DESTROYED, Action.NONE, {"handledPowerRequest": "s1", "stopReason": "PowerRequest"}, False),
    ("stop-of-a-stopped-vm-is-acknowledged", "Running", S1, {"phase": "Stopped", "stopReason": "GuestShutdown"},
     GUEST_OFF, Action.NONE, {"handledPowerRequest": "s1", "stopReason": "PowerRequest"}, False),
    ("start-releases-a-hold", "Running", ST1, {"phase": "Stopped", "stopReason": "PowerRequest"}, DESTROYED,
     Action.START, {"handledPowerRequest": "st1", "stopReason": None}, False),
    ("start-of-a-running-vm-is-acknowledged", "Running", ST1, {"phase": "Running"}, RUNNING, Action.NONE,
     {"handledPowerRequest": "st1"}, False),
    ("start-with-run-state-stopped-is-ignored", "Stopped", ST1, {"phase": "Stopped", "stopReason": "Requested"},
     DESTROYED, Action.NONE, {"handledPowerRequest": "st1"}, False),
    ("restart-with-run-state-stopped-stays-stopped", "Stopped", R1, {"phase": "Stopped", "stopReason": "Requested"},
     DESTROYED, Action.NONE, {"handledPowerRequest": "r1", "stopReason": "Requested"}, False),
]


@pytest.mark.parametrize("run,power,status,dom,action,updates,flush", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan(run: str, power: dict[str, Any] | None, status: dict[str, Any], dom: DomainStatus | None,
              action: Action, updates: dict[str, Any], flush: bool) -> None:
    p = plan(_spec(run, power), status, dom, now=NOW, poll=0.5)
    assert p.action is action
    assert {k: p.status.get(k, "<unset>") for k in updates} == updates
    assert p.flush_first is flush


def test_start_request_with_run_state_stopped_says_why() -> None:
    p = plan(_spec("Stopped", ST1), {"phase": "Stopped"}, None, now=NOW, poll=0.5)
    assert "ignored: runState is Stopped" in p.message


def test_deletion_stops_gracefully_within_the_grace_period() -> None:
    p = plan_deletion(_spec("Running", R1, grace=7), {"phase": "Running"}, RUNNING, now=NOW, poll=0.5)
    assert p.action is Action.SHUTDOWN
    assert p.status["shutdownDeadline"] == ts(NOW + dt.timedelta(seconds=7))
    assert "pendingPowerRequest" not in p.status
