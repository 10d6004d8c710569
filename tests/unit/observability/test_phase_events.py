"""Phase changes become events users see in `kubectl describe`: Normal for the ordinary
path, Warning (with the failing condition's message) for phases that need attention."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.controllers.phase_events import PhaseEvents
from controlplane.controllers.runtime.state import State


def _run(old: str | None, new: str | None, conditions: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = []
    ctx = SimpleNamespace(recorder=SimpleNamespace(record=lambda obj, **kw: recorded.append(kw)))
    current = {"metadata": {"name": "vm", "namespace": "ns", "uid": "u"}, "status": {"phase": old} if old else {}}
    state = State(ctx, VIRTUAL_MACHINES, current)  # type: ignore[arg-type]
    if new:
        state.changed["status"]["phase"] = new
    state.changed["status"]["conditions"] = conditions or []
    PhaseEvents(warning=frozenset({"Degraded"})).handle(state)
    return recorded


@pytest.mark.parametrize(("old", "new", "expected"), [
    (None, "Pending", {"type": "Normal", "reason": "PhaseChanged", "message": "phase (none) -> Pending"}),
    ("Starting", "Running", {"type": "Normal", "reason": "PhaseChanged", "message": "phase Starting -> Running"}),
    ("Running", "Degraded", {"type": "Warning", "reason": "PhaseChanged",
                             "message": "phase Running -> Degraded: the guest stopped answering"}),
], ids=["first-phase", "running", "degraded"])
def test_a_phase_change_is_recorded(old: str | None, new: str, expected: dict[str, str]) -> None:
    conds = [{"type": "Ready", "status": "True", "message": "fine"},
             {"type": "Running", "status": "False", "message": "the guest stopped answering"}]
    assert _run(old, new, conds) == [expected]


@pytest.mark.parametrize(("old", "new"), [("Running", "Running"), ("Running", None)], ids=["same", "no-phase"])
def test_no_change_no_event(old: str, new: str | None) -> None:
    assert _run(old, new) == []
