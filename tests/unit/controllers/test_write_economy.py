"""What keeps the controllers' cost per object flat: no API write that changes nothing, no
reconcile of objects a change does not concern, no scan where an index answers (placement's
running per-node sums are tested in test_scheduler.py).

- the event recorder writes a new event with one POST and a repeat with one PATCH (no GET);
  the controllers' recorder writes from its own thread, so a reconcile never waits for an event;
- a reconciler whose cache still holds the version its own write replaced waits for the
  write's watch event instead of deciding (and writing) again from stale data;
- watches that read a few fields of a related object ignore its other changes;
- a VirtualMachineClass's InUse message does not change with every new VM of the class;
- the VM controller does not PUT an instance whose stored spec (defaults filled) already says it;
- the disk controller's cycle that creates a volume writes the observedGeneration too (not a
  status write of its own in the next cycle);
- the components' own writes ask the server to skip the duplicate-field scan meant for
  manifests, and a reconcile's private copy of its object is cheap (JSON, not `deepcopy`).
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest

from controlplane.api.resources import VIRTUAL_DISKS, VIRTUAL_MACHINE_CLASSES, VIRTUAL_MACHINES, VOLUMES
from controlplane.common.kube import events
from controlplane.common.kube.client import KubeClient, _error
from controlplane.common.kube.events import BackgroundEventRecorder, EventRecorder
from controlplane.common.kube.informer import Informer
from controlplane.common.kube.settings import RuntimeSettings
from controlplane.controllers.disk.controller import VolumeHandler
from controlplane.controllers.disk.sources import Source
from controlplane.controllers.runtime import indexes
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import fields_changed, spec_changed
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.vmclass.controller import DeletionHandler
from tests.unit.controllers.recorders import CollectedEvents


class EventKube:
    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        self.calls: list[str] = []
        self.created: list[dict[str, Any]] = []
        self.existing = existing

    def get_or_none(self, *_: Any) -> dict[str, Any] | None:
        self.calls.append("GET")
        return self.existing

    def create(self, _res: Any, body: dict[str, Any], _ns: str) -> dict[str, Any]:
        self.calls.append("POST")
        self.created.append(body)
        if self.existing is not None:
            raise _error(409, b'{"reason": "AlreadyExists", "message": "exists"}')
        return body

    def patch(self, _res: Any, _name: str, body: dict[str, Any], _ns: str) -> dict[str, Any]:
        self.calls.append(f"PATCH count={body['count']}")
        return body


OBJ = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns", "uid": "u1"}}


def test_a_new_event_is_one_post_and_a_repeat_one_patch() -> None:
    kube = EventKube()
    rec = EventRecorder(kube, "test")  # type: ignore[arg-type]
    for _ in range(3):
        rec.record(OBJ, type="Normal", reason="Done", message="it is done")
    assert kube.calls == ["POST", "PATCH count=2", "PATCH count=3"]


def test_an_event_written_before_a_restart_is_found_by_the_posts_conflict() -> None:
    kube = EventKube(existing={"count": 4})
    EventRecorder(kube, "test").record(OBJ, type="Normal", reason="Done", message="it is done")  # type: ignore[arg-type]
    assert kube.calls == ["POST", "GET", "PATCH count=5"]


def test_an_object_gets_a_burst_of_events_then_one_per_refill() -> None:
    kube = EventKube()
    rec = EventRecorder(kube, "test")  # type: ignore[arg-type]
    now = [100.0]
    rec.clock = lambda: now[0]
    for i in range(events.SPAM_BURST + 5):
        rec.record(OBJ, type="Normal", reason="Changed", message=f"change {i}")
    assert len(kube.calls) == events.SPAM_BURST  # client-go's spam filter: the rest dropped, unwritten
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm2", "namespace": "ns", "uid": "u2"}}
    rec.record(other, type="Normal", reason="Changed", message="another object has its own burst")
    now[0] += events.SPAM_REFILL_S
    rec.record(OBJ, type="Normal", reason="Changed", message="one more after a refill")
    rec.record(OBJ, type="Normal", reason="Changed", message="but not two")
    assert len(kube.calls) == events.SPAM_BURST + 2


class SlowEventKube(EventKube):
    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def create(self, _res: Any, body: dict[str, Any], _ns: str) -> dict[str, Any]:
        assert self.go.wait(5)
        return super().create(_res, body, _ns)


def test_a_reconcile_hands_its_event_over_and_never_waits_for_the_api() -> None:
    kube = SlowEventKube()
    rec = BackgroundEventRecorder(kube, "test")  # type: ignore[arg-type]
    started = time.monotonic()
    for _ in range(2):
        rec.record(OBJ, type="Normal", reason="Done", message="it is done")
    assert time.monotonic() - started < 0.5 and kube.calls == []  # the API is stuck; the reconcile is not
    kube.go.set()
    assert rec.flush()
    assert kube.calls == ["POST", "PATCH count=2"]  # in order, folded as the synchronous recorder does


def test_events_of_a_held_block_go_out_after_it_in_order() -> None:
    kube = EventKube()
    rec = BackgroundEventRecorder(kube, "test")  # type: ignore[arg-type]
    with rec.held():
        rec.record(OBJ, type="Normal", reason="First", message="one")
        with rec.held():  # nested: the outer block hands them over
            rec.record(OBJ, type="Normal", reason="Second", message="two")
        time.sleep(0.1)
        assert kube.calls == [], "nothing goes out while the block runs (the cycle's writes go first)"
    assert rec.flush()
    assert kube.calls == ["POST", "POST"]
    assert [e["reason"] for e in kube.created] == ["First", "Second"]
    rec.record(OBJ, type="Normal", reason="Third", message="three")
    assert rec.flush() and len(kube.calls) == 3, "outside a block an event goes out at once"


def test_an_event_is_written_its_delay_after_it_was_recorded_in_order() -> None:
    kube = TimedEventKube()
    rec = BackgroundEventRecorder(kube, "test", delay=0.2)  # type: ignore[arg-type]
    recorded = time.monotonic()
    rec.record(OBJ, type="Normal", reason="First", message="one")
    rec.record(OBJ, type="Normal", reason="Second", message="two")
    time.sleep(0.1)
    assert kube.calls == [], "within its delay an event leaves the API to the writes others wait for"
    assert rec.flush()
    assert [e["reason"] for e in kube.created] == ["First", "Second"]
    assert all(at - recorded >= 0.2 for at in kube.at), kube.at
    assert RuntimeSettings().event_delay == 0.05, "the controllers' and node handler's delay: short"


class TimedEventKube(EventKube):
    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def create(self, _res: Any, body: dict[str, Any], _ns: str) -> dict[str, Any]:
        self.at.append(time.monotonic())
        return super().create(_res, body, _ns)


def test_a_held_block_that_raises_still_hands_its_events_over() -> None:
    kube = EventKube()
    rec = BackgroundEventRecorder(kube, "test")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError), rec.held():
        rec.record(OBJ, type="Warning", reason="Failed", message="why")
        raise RuntimeError("handler failed")
    assert rec.flush() and kube.calls == ["POST"]


class SlowStatusKube(EventKube):
    """Events and a status write that takes a while (its call is noted when it ends)."""

    def replace(self, _res: Any, body: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        time.sleep(0.1)
        self.calls.append(f"PUT {subresource}")
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "2"}}


class RecordsPhase:
    name = "phase"

    def handle(self, state: State) -> None:
        state.status["phase"] = "Running"
        state.ctx.recorder.record(state.changed, type="Normal", reason="PhaseChanged", message="-> Running")


def test_a_cycle_writes_its_status_before_its_events() -> None:
    kube = SlowStatusKube()
    ctx = Context(kube=kube, settings=PlatformSettings(),  # type: ignore[arg-type]
                  recorder=BackgroundEventRecorder(kube, "test"))  # type: ignore[arg-type]
    vm = {"metadata": {"name": "vm", "namespace": "ns", "resourceVersion": "1"}, "spec": {}}
    ctx.informers[VIRTUAL_MACHINES] = Cache(vm)  # type: ignore[assignment]
    Reconciler(ctx, VIRTUAL_MACHINES, [RecordsPhase()])(("ns", "vm"))
    assert ctx.recorder.flush()  # type: ignore[attr-defined]
    assert kube.calls == ["PUT status", "POST"]


class WritingKube:
    def __init__(self) -> None:
        self.writes = 0

    def replace(self, _res: Any, body: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        self.writes += 1
        return {**body, "metadata": {**body["metadata"], "resourceVersion": str(int(body["metadata"]["resourceVersion"]) + 1)}}


class Cache:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def get(self, _namespace: str, _name: str) -> dict[str, Any] | None:
        return self.obj


class Counts:
    name = "counts"

    def __init__(self) -> None:
        self.runs = 0

    def handle(self, state: State) -> None:
        self.runs += 1
        state.status["seen"] = int(state.status.get("seen") or 0) + 1


def test_a_cycle_waits_for_the_watch_event_of_its_own_write() -> None:
    kube = WritingKube()
    vm = {"metadata": {"name": "vm", "namespace": "ns", "resourceVersion": "1"}, "spec": {}}
    cache = Cache(vm)
    ctx = Context(kube=kube, settings=PlatformSettings(), recorder=CollectedEvents())
    ctx.informers[VIRTUAL_MACHINES] = cache  # type: ignore[assignment]
    handler = Counts()
    rec = Reconciler(ctx, VIRTUAL_MACHINES, [handler])
    rec(("ns", "vm"))
    again = rec(("ns", "vm"))  # queued again by another watch before the cache saw the write: nothing to decide on
    assert (handler.runs, kube.writes) == (1, 1)
    assert again is not None and again.requeue_after is not None and 0 < again.requeue_after <= 2.0
    cache.obj = {**vm, "metadata": {**vm["metadata"], "resourceVersion": "2"}, "status": {"seen": 1}}
    rec(("ns", "vm"))  # the write's event arrived: a cycle on what was written
    assert (handler.runs, kube.writes) == (2, 2)


def test_a_watch_event_that_never_comes_costs_a_delay_not_a_stuck_object() -> None:
    kube = WritingKube()
    vm = {"metadata": {"name": "vm", "namespace": "ns", "resourceVersion": "1"}, "spec": {}}
    ctx = Context(kube=kube, settings=PlatformSettings(), recorder=CollectedEvents(),
                  runtime=RuntimeSettings(stale_cache_wait=0.05))
    ctx.informers[VIRTUAL_MACHINES] = Cache(vm)  # type: ignore[assignment]
    handler = Counts()
    rec = Reconciler(ctx, VIRTUAL_MACHINES, [handler])
    rec(("ns", "vm"))
    assert rec(("ns", "vm")) is not None and handler.runs == 1
    time.sleep(0.06)
    rec(("ns", "vm"))  # the cache never moved: after the wait the cycle works from what it holds
    assert handler.runs == 2


def test_watches_ignore_changes_of_fields_they_do_not_read() -> None:
    cls: dict[str, Any] = {"metadata": {"name": "generic", "generation": 1}, "spec": {"cpu": {"type": "Host"}},
                           "status": {"phase": "Ready"}}
    counted = copy.deepcopy(cls)
    counted["status"]["conditions"] = [{"type": "InUse", "status": "True"}]
    assert not spec_changed(counted, cls)
    resized = copy.deepcopy(cls)
    resized["spec"]["cpu"]["type"] = "Discovery"
    assert spec_changed(resized, cls)
    deleting = copy.deepcopy(cls)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert spec_changed(deleting, cls)

    relevant = fields_changed(("status", "nodeName"))
    vm: dict[str, Any] = {"metadata": {"name": "vm"}, "status": {"phase": "Pending"}}
    assert not relevant({**vm, "status": {"phase": "Starting"}}, vm)
    assert relevant({**vm, "status": {"phase": "Pending", "nodeName": "n1"}}, vm)
    assert relevant(vm, None)


def test_a_class_in_use_says_so_in_words_that_do_not_change_with_each_new_vm() -> None:
    vms = Informer(None, VIRTUAL_MACHINES)  # type: ignore[arg-type]
    ctx = Context(kube=None, settings=PlatformSettings(), recorder=CollectedEvents())
    ctx.informers[VIRTUAL_MACHINES] = vms
    indexes.register(ctx, indexes.VMS_BY_CLASS)
    cls: dict[str, Any] = {"apiVersion": VIRTUAL_MACHINE_CLASSES.api_version, "kind": "VirtualMachineClass",
                           "metadata": {"name": "generic", "resourceVersion": "1", "generation": 1}, "spec": {}}
    messages = []
    for i in range(3):
        vms._apply({"type": "ADDED", "object": {"metadata": {"name": f"vm-{i}", "namespace": "ns"},
                                                "spec": {"virtualMachineClassName": "generic"}}})
        state = State(ctx, VIRTUAL_MACHINE_CLASSES, cls)
        DeletionHandler().handle(state)
        messages.append([c["message"] for c in state.status["conditions"] if c["type"] == "InUse"])
    assert messages[0] == messages[1] == messages[2] and messages[0]
    deleting = {**cls, "metadata": {**cls["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    state = State(ctx, VIRTUAL_MACHINE_CLASSES, deleting)
    DeletionHandler().handle(state)
    in_use = next(c for c in state.status["conditions"] if c["type"] == "InUse")
    assert "used by 3 virtual machine(s): ns/vm-0, ns/vm-1, ns/vm-2" in in_use["message"]
    assert state.status["phase"] == "Terminating"


class CreateKube:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create(self, _res: Any, body: dict[str, Any], _ns: str | None = None) -> dict[str, Any]:
        self.created.append(body)
        return body


def test_the_cycle_that_creates_a_disks_volume_says_which_generation_it_acted_on() -> None:
    kube = CreateKube()
    ctx = Context(kube=kube, settings=PlatformSettings(), recorder=CollectedEvents())
    vms = ctx.informers[VIRTUAL_MACHINES] = Informer(None, VIRTUAL_MACHINES)  # type: ignore[arg-type]
    ctx.informers[VOLUMES] = Informer(None, VOLUMES)  # type: ignore[arg-type]
    indexes.register(ctx, indexes.VMS_BY_BLOCK_DEVICE)
    vms._apply({"type": "ADDED", "object": {
        "metadata": {"name": "vm", "namespace": "ns"}, "status": {"nodeName": "n1"},
        "spec": {"blockDeviceRefs": [{"kind": "VirtualDisk", "name": "d"}]}}})
    disk = {"apiVersion": VIRTUAL_DISKS.api_version, "kind": "VirtualDisk", "metadata": {
        "name": "d", "namespace": "ns", "uid": "u", "resourceVersion": "1", "generation": 3},
        "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}
    state = State(ctx, VIRTUAL_DISKS, disk)
    state.scratch["source"] = Source()
    VolumeHandler().handle(state)
    assert [v["spec"]["nodeName"] for v in kube.created] == ["n1"]
    assert state.status["phase"] == "Provisioning" and state.status["observedGeneration"] == 3


class RecordingClient(KubeClient):
    """A KubeClient whose requests are recorded instead of sent."""

    def __init__(self) -> None:  # no ApiClient: nothing is sent
        self.calls: list[tuple[str, str, dict[str, Any] | None]] = []

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
                content_type: str = "application/json", timeout: float | None = 30) -> dict[str, Any]:
        self.calls.append((method, path, query))
        return {}


def test_the_components_own_writes_skip_the_checks_meant_for_manifests() -> None:
    kube = RecordingClient()
    vm = {"metadata": {"name": "vm", "namespace": "ns"}, "spec": {}}
    kube.create(VIRTUAL_MACHINES, vm)
    kube.replace(VIRTUAL_MACHINES, vm, subresource="status")
    kube.patch(VIRTUAL_MACHINES, "vm", {"spec": {}}, "ns")
    kube.get(VIRTUAL_MACHINES, "vm", "ns")
    queries = {method: query for method, _path, query in kube.calls}
    assert queries["POST"] == queries["PUT"] == queries["PATCH"] == {"fieldValidation": "Ignore"}
    assert not queries["GET"]


def test_a_reconcile_edits_its_own_copy_of_the_cached_object() -> None:
    ctx = Context(kube=WritingKube(), settings=PlatformSettings(), recorder=CollectedEvents())
    cached = {"metadata": {"name": "vm", "namespace": "ns", "labels": {"a": "1"}}, "spec": {"cores": [1, 2]}}
    state = State(ctx, VIRTUAL_MACHINES, cached)
    state.changed["metadata"]["labels"]["a"] = "2"
    state.changed["spec"]["cores"].append(3)
    assert cached == {"metadata": {"name": "vm", "namespace": "ns", "labels": {"a": "1"}}, "spec": {"cores": [1, 2]}}
    odd = {"metadata": {"name": "vm", "namespace": "ns"}, "spec": {3: ["an int key: not JSON"]}}
    copied = State(ctx, VIRTUAL_MACHINES, odd).changed
    assert copied["spec"] == {3: ["an int key: not JSON"]} and copied["spec"][3] is not odd["spec"][3]
