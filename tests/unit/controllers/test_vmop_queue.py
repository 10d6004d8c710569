"""VMOP queueing: an older pending power operation superseded by a newer one ends Superseded, as DVP documents."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from controlplane.controllers.vmop.controller import Init, Queue


class _Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(self, obj: Any, **event: Any) -> None:
        self.events.append(event)


def _op(name: str, created: str, kind: str, phase: str | None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"type": kind, "virtualMachineName": "vm"}, "status": {"phase": phase} if phase else {}}


def _state(me: dict[str, Any], others: list[dict[str, Any]]) -> Any:
    recorder = _Recorder()
    return SimpleNamespace(
        name=me["metadata"]["name"], namespace="ns", generation=1, spec=me["spec"], current=me, changed=me,
        status={"phase": "Pending"}, stop=False, ctx=SimpleNamespace(recorder=recorder), deleting=False,
        get=lambda resource, name: None,
        lookup=lambda index, key: [me, *others] if key == "ns/vm" else [])


def test_an_older_pending_power_operation_is_superseded() -> None:
    older = _op("start", "2026-01-01T00:00:00Z", "Start", "Pending")
    state = _state(older, [_op("stop", "2026-01-01T00:00:05Z", "Stop", None)])
    Queue().handle(state)
    assert state.status["phase"] == "Superseded" and state.stop
    completed = next(c for c in state.status["conditions"] if c["type"] == "Completed")
    assert (completed["status"], completed["reason"]) == ("False", "Superseded")
    assert "superseded by the newer operation stop" in completed["message"]
    assert state.ctx.recorder.events[0]["reason"] == "Superseded"


def test_the_newest_and_non_power_operations_are_not_superseded() -> None:
    newest = _op("stop", "2026-01-01T00:00:05Z", "Stop", "Pending")
    state = _state(newest, [_op("start", "2026-01-01T00:00:00Z", "Start", "Pending")])
    Queue().handle(state)
    assert state.status["phase"] == "Pending"
    evict = _op("evict", "2026-01-01T00:00:00Z", "Evict", "Pending")
    state = _state(evict, [_op("stop", "2026-01-01T00:00:05Z", "Stop", None)])
    Queue().handle(state)
    assert state.status["phase"] == "Pending"


def test_superseded_is_final() -> None:
    op = _op("start", "2026-01-01T00:00:00Z", "Start", "Superseded")
    state = _state(op, [])
    state.status = {"phase": "Superseded"}
    Init().handle(state)
    assert state.stop and state.status["phase"] == "Superseded"
