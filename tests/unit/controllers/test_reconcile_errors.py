"""A reconcile always reports: a handler that fails mid-chain still leaves its condition and
message in the object's status, the handlers after it still run, the status is written once,
and the joined errors go back to the controller loop, which retries as the error asks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import VMCondition as C
from controlplane.common.kube import errors
from controlplane.common.kube.client import KubeError, _error
from controlplane.common.kube.controller import Controller
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import ReconcileError, Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.settings import PlatformSettings
from tests.unit.controllers.recorders import CollectedEvents


class FakeKube:
    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    def replace(self, resource: Any, body: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        assert subresource == "status"
        self.writes.append(json.loads(json.dumps(body)))
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "2"}}

    def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}


class FakeCache:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.obj if (namespace, name) == ("default", "vm") else None


VM = {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachine",
      "metadata": {"name": "vm", "namespace": "default", "resourceVersion": "1", "generation": 3, "uid": "u"},
      "spec": {"virtualMachineClassName": "generic"}}


def _context(kube: FakeKube) -> Context:
    ctx = Context(kube=kube, settings=PlatformSettings(), recorder=CollectedEvents())
    ctx.informers[VIRTUAL_MACHINES] = FakeCache(VM)  # type: ignore[assignment]
    return ctx


class SetsIP:
    name = "ipam"
    condition = C.Type.IP_ADDRESS_READY

    def handle(self, state: State) -> None:
        conditions.set_condition(state.status, C.Type.IP_ADDRESS_READY, True,
                                 C.IPAddressReadyReason.IP_ADDRESS_READY, "", generation=state.generation)


class Fails:
    name = "class"
    condition = C.Type.CLASS_READY

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def handle(self, state: State) -> None:
        raise self.exc


class OverwritesClassReady:
    """A later handler that would report ClassReady as if nothing had happened."""

    name = "status"

    def handle(self, state: State) -> None:
        state.status["phase"] = "Pending"
        conditions.set_condition(state.status, C.Type.CLASS_READY, True, C.ClassReadyReason.CLASS_READY, "")


@pytest.mark.parametrize("exc, reason, says", [
    (RuntimeError("class lookup broke"), "ReconcileFailed", "class lookup broke"),
    (KubeError(503, "ServiceUnavailable", "etcd is down"), "APIServerUnavailable", "retrying on its own"),
    (KubeError(429, "TooManyRequests", "slow down"), "APIServerUnavailable", "busy"),
    (ConnectionRefusedError("refused"), "APIServerUnavailable", "unreachable"),
], ids=["bug", "5xx", "429", "refused"])
def test_a_failing_handler_leaves_its_condition_in_the_written_status(exc: Exception, reason: str, says: str) -> None:
    kube = FakeKube()
    reconciler = Reconciler(_context(kube), VIRTUAL_MACHINES, [SetsIP(), Fails(exc), OverwritesClassReady()],
                            failure_condition=C.Type.RUNNING)
    with pytest.raises(ReconcileError) as raised:
        reconciler(("default", "vm"))
    assert errors.leaves(raised.value) == [exc]
    assert len(kube.writes) == 1, "the status is written once, even though a handler failed"
    status = kube.writes[0]["status"]
    assert status["phase"] == "Pending", "the handlers after the failing one still ran"
    assert conditions.is_true(status, C.Type.IP_ADDRESS_READY)
    failed = conditions.get(status, C.Type.CLASS_READY)
    assert failed is not None
    assert (failed["status"], failed["reason"], failed["observedGeneration"]) == ("Unknown", reason, 3)
    assert failed["message"].startswith("class: ") and says in failed["message"]


def test_a_handler_without_a_condition_reports_in_the_kinds_failure_condition() -> None:
    class Anonymous:
        name = "anon"

        def handle(self, state: State) -> None:
            raise ValueError("no such thing")

    kube = FakeKube()
    with pytest.raises(ReconcileError):
        Reconciler(_context(kube), VIRTUAL_MACHINES, [Anonymous()], failure_condition=C.Type.RUNNING)(("default", "vm"))
    running = conditions.get(kube.writes[0]["status"], C.Type.RUNNING)
    assert running is not None and "anon: no such thing" in running["message"]


def test_retry_after_is_read_from_the_header_and_the_status_details() -> None:
    assert _error(429, b'{"reason": "TooManyRequests"}', {"Retry-After": "3"}).retry_after == 3
    body = json.dumps({"reason": "ServerTimeout", "details": {"retryAfterSeconds": 2}}).encode()
    assert _error(504, body).retry_after == 2
    assert _error(500, b"oops").retry_after is None


@pytest.mark.parametrize("exc, expected", [
    (KubeError(409, "Conflict", "rv"), errors.Retry(conflict=True)),
    (ExceptionGroup("x", [KubeError(409, "Conflict", "rv")]), errors.Retry(conflict=True)),
    (KubeError(429, "TooManyRequests", "", retry_after=4), errors.Retry(temporary=True, after=4)),
    (ExceptionGroup("x", [KubeError(503, "", "", retry_after=1), KubeError(429, "", "", retry_after=4)]),
     errors.Retry(temporary=True, after=4)),
    (TimeoutError("read timed out"), errors.Retry(temporary=True)),
    (errors.TemporaryError("volume busy", delay=7), errors.Retry(temporary=True, after=7)),
    (ExceptionGroup("x", [KubeError(503, "", ""), ValueError("bug")]), errors.Retry()),
    (KubeError(422, "Invalid", "spec.x"), errors.Retry()),
], ids=["conflict", "joined-conflict", "429", "joined-longest", "timeout", "temporary", "mixed", "invalid"])
def test_errors_are_sorted_by_what_happens_next(exc: BaseException, expected: errors.Retry) -> None:
    assert errors.classify(exc) == expected


def test_the_loop_retries_after_the_delay_the_server_asked_for() -> None:
    delays: list[tuple[Any, float]] = []

    def reconcile(key: Any) -> None:
        raise ReconcileError("x", [KubeError(429, "TooManyRequests", "", retry_after=6)])

    ctl = Controller("t", reconcile)
    ctl.queue.add_after = lambda key, delay: delays.append((key, delay))  # type: ignore[method-assign]
    ctl._one(("default", "vm"))
    assert delays == [(("default", "vm"), 6)]


def test_a_failure_report_lasts_as_long_as_the_failure() -> None:
    kube = FakeKube()
    ctx = _context(kube)
    failing = Fails(RuntimeError("boom"))
    with pytest.raises(ReconcileError):
        Reconciler(ctx, VIRTUAL_MACHINES, [failing])(("default", "vm"))
    reported = kube.writes[-1]
    ctx.informers[VIRTUAL_MACHINES] = FakeCache(reported)  # type: ignore[assignment]
    with pytest.raises(ReconcileError):
        Reconciler(ctx, VIRTUAL_MACHINES, [failing])(("default", "vm"))
    assert len(kube.writes) == 1, "failing the same way again writes nothing new"
    Reconciler(ctx, VIRTUAL_MACHINES, [SetsIP()])(("default", "vm"))
    cleared = conditions.get(kube.writes[-1]["status"], C.Type.CLASS_READY)
    assert cleared is not None and (cleared["status"], cleared["reason"], cleared["message"]) == \
        ("Unknown", "Unknown", "")
    assert cleared["lastTransitionTime"] == conditions.get(reported["status"], C.Type.CLASS_READY)["lastTransitionTime"]  # type: ignore[index]
