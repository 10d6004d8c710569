"""The source node handler's recovery of a migration whose request (`spec.migration`) was withdrawn
while the handler was away (its VMOP deleted): only `status.migration` is left, and exactly one
domain must run whatever libvirtd did meanwhile. Fakes stand in for libvirt (source and target
connections) and the API; the lifecycle's guard (no start while a migration from here has not
settled) is tested on `plan()`."""

from __future__ import annotations

import copy
import datetime as dt
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import libvirt
import pytest

from controlplane.api.instance import parse_instance
from controlplane.api.internal import NODE_LABEL, placed_on
from controlplane.common.kube.client import NODES, KubeError
from controlplane.nodehandler import migrations as mod
from controlplane.nodehandler.context import INSTANCES
from controlplane.nodehandler.domains import DomainStatus
from controlplane.nodehandler.lifecycle import Action, plan
from controlplane.nodehandler.migration import MigrationOptions
from controlplane.nodehandler.migrations import Migrations

UID = "5f0c8a5e-2d7b-4b61-9d8e-3c2a1b0f9e77"
XML = "<domain><memory unit='KiB'>1024</memory><devices/></domain>"


def _error() -> libvirt.libvirtError:
    return libvirt.libvirtError("fake")


class FakeDom:
    def __init__(self, *, active: bool = True, job: int = libvirt.VIR_DOMAIN_JOB_NONE,
                 state: int = libvirt.VIR_DOMAIN_RUNNING) -> None:
        self.active, self.job, self.state_code = active, job, state
        self.destroyed = self.undefined = self.aborted = False

    def isActive(self) -> int:
        return int(self.active)

    def jobInfo(self) -> list[int]:
        return [self.job]

    def jobStats(self, flags: int = 0) -> dict[str, int]:
        raise _error()

    def abortJob(self) -> None:
        self.aborted, self.job = True, libvirt.VIR_DOMAIN_JOB_NONE

    def state(self) -> list[int]:
        return [self.state_code if self.active else libvirt.VIR_DOMAIN_SHUTOFF, 0]

    def resume(self) -> None:
        self.state_code = libvirt.VIR_DOMAIN_RUNNING

    def destroy(self) -> None:
        self.destroyed, self.active = True, False

    def undefine(self) -> None:
        self.undefined = True

    def XMLDesc(self, flags: int = 0) -> str:
        return XML


class FakeConn:
    def __init__(self, dom: FakeDom | None) -> None:
        self.dom = dom

    def lookupByUUIDString(self, uid: str) -> FakeDom:
        if self.dom is None or uid != UID:
            raise _error()
        return self.dom

    def close(self) -> int:
        return 0


class FakeKube:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.opened: list[str] = []
        self.writes = 0

    def get_or_none(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if res == INSTANCES and (namespace, name) == ("ns1", "vm1"):
            return copy.deepcopy(self.obj)  # as stored
        if res == NODES and name == "n2":
            return {"metadata": {"name": "n2"}, "status": {"addresses": [{"type": "Hostname", "address": "n2"},
                                                                         {"type": "InternalIP", "address": "10.0.0.2"}]}}
        return None

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        assert res == INSTANCES
        self.writes += 1
        if not placed_on(self.obj, "n1"):  # the node authorizer decides on the stored object
            raise KubeError(403, "Forbidden", 'User "system:node:n1" cannot patch resource "internalvirtualmachineinstances"')
        if subresource == "status":
            self.obj["status"]["migration"].update(body["status"]["migration"])
            self.obj["status"].update({k: v for k, v in body["status"].items() if k != "migration"})
        else:
            self.obj["spec"].update(body["spec"])
            self.obj["metadata"]["labels"].update(body["metadata"]["labels"])
        return self.obj


class World:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, *, here: FakeDom | None,
                 there: FakeDom | None, phase: str = "Migrating", request: dict[str, Any] | None = None) -> None:
        self.obj: dict[str, Any] = {
            "metadata": {"name": "vm1", "namespace": "ns1", "uid": UID, "labels": {NODE_LABEL: "n1"}},
            "spec": {"nodeName": "n1", **({"migration": request} if request else {})},
            "status": {"migration": {"id": "op-1", "phase": phase, "sourceNode": "n1", "targetNode": "n2",
                                     "startTimestamp": "2026-01-01T00:00:00Z"}}}
        self.here, self.there = here, there
        self.kube = FakeKube(self.obj)
        self.removed: list[str] = []
        ctx = SimpleNamespace(
            node="n1", kube=self.kube, domains=SimpleNamespace(lookup=lambda uid: self.here),
            volumes=SimpleNamespace(get=lambda ns, name: None), events=SimpleNamespace(record=lambda *a, **k: None),
            layout=SimpleNamespace(libvirt_pki=tmp / "pki", instance_dir=lambda uid: tmp / uid,
                                   vnc_socket=lambda uid: tmp / f"{uid}.sock", migration_stream_tls=lambda: False))
        self.requeued: list[tuple[str, str]] = []
        self.migrations = Migrations(ctx, self.requeued.append)  # type: ignore[arg-type]

        def open_target(uri: str) -> FakeConn:
            self.kube.opened.append(uri)
            return FakeConn(self.there)

        monkeypatch.setattr(mod.libvirt, "open", open_target)
        monkeypatch.setattr(Migrations, "_remove_target_copies",
                            staticmethod(lambda dconn, xml, uid: self.removed.append(uid)))

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.obj["status"]["migration"])

    def handle(self) -> bool:
        here = self.here
        dom = None if here is None else DomainStatus(name="dvp-ns1_vm1", state=here.state()[0], reason=0, xml=XML)
        return self.migrations.handle(self.obj, dom)

    def wait_idle(self) -> None:
        until = time.monotonic() + 5
        while self.migrations.busy(UID) and time.monotonic() < until:
            time.sleep(0.02)
        assert not self.migrations.busy(UID)


def test_a_running_job_whose_request_was_withdrawn_is_aborted_and_the_vm_stays_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mod, "MigrationOptions", lambda **kw: MigrationOptions(poll_every=0.01, **kw))
    w = World(tmp_path, monkeypatch, here=FakeDom(job=libvirt.VIR_DOMAIN_JOB_UNBOUNDED),
              there=FakeDom(state=libvirt.VIR_DOMAIN_PAUSED))
    assert w.handle() is True  # the migration owns the instance while the abort settles
    w.wait_idle()
    assert w.here is not None and w.here.aborted and w.here.active and not w.here.destroyed
    assert w.there is not None and w.there.destroyed and w.there.undefined
    assert w.removed == [UID]
    assert w.kube.opened == [f"qemu+tls://10.0.0.2:16514/system?pkipath={tmp_path / 'pki'}"]
    st = w.status
    assert (st["phase"], st["reason"]) == ("Cancelled", "Cancelled"), st
    assert "withdrawn" in st["message"]
    assert w.obj["spec"]["nodeName"] == "n1" and w.requeued == [("ns1", "vm1")]
    assert w.obj["status"]["nodeName"] == "n1"  # the routes stay with (or come back to) the copy that runs here
    assert w.handle() is False  # settled: the lifecycle owns it again


def test_a_migration_that_completed_after_the_withdrawal_hands_the_instance_to_the_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = World(tmp_path, monkeypatch, here=None, there=FakeDom())
    assert w.handle() is True  # never the lifecycle's (it would start a second copy here)
    assert w.there is not None and not w.there.destroyed
    st = w.status
    assert (st["phase"], st["result"], st["reason"]) == ("Succeeded", "Succeeded", "CompletedAfterWithdrawal"), st
    assert "runs on node n2" in st["message"] and "after the switch-over" in st["message"]
    assert w.obj["status"]["nodeName"] == "n2"  # in the same write: routes follow the running copy at once
    assert w.obj["spec"]["nodeName"] == "n2" and w.obj["metadata"]["labels"]


def test_a_withdrawn_migration_that_no_longer_runs_is_cancelled_here_and_the_target_cleaned(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = World(tmp_path, monkeypatch, here=FakeDom(state=libvirt.VIR_DOMAIN_PAUSED),
              there=FakeDom(state=libvirt.VIR_DOMAIN_PAUSED))
    assert w.handle() is False
    assert w.here is not None and w.here.state_code == libvirt.VIR_DOMAIN_RUNNING and not w.here.destroyed
    assert w.there is not None and w.there.destroyed and w.there.undefined and w.removed == [UID]
    st = w.status
    assert (st["phase"], st["reason"]) == ("Cancelled", "Cancelled") and "keeps running on node n1" in st["message"]


def test_an_unreachable_target_keeps_the_instance_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = World(tmp_path, monkeypatch, here=None, there=None)

    def unreachable(uri: str) -> FakeConn:
        raise _error()

    monkeypatch.setattr(mod.libvirt, "open", unreachable)
    assert w.handle() is True
    assert w.status["phase"] == "Migrating"


def _stale_copy(w: World) -> dict[str, Any]:
    """What the informer may still hold: the migration op-1 to n2 in flight and still requested."""
    cached = copy.deepcopy(w.obj)
    cached["spec"]["migration"] = {"id": "op-1", "targetNode": "n2", "targetAddress": "10.0.0.2"}
    return cached


def test_a_recovery_is_not_made_from_a_stale_copy_of_an_instance_handed_over_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The migration thread wrote Succeeded and handed the instance to n2; the reconcile it then
    asks for still reads op-1 in flight from the informer: it must neither write an outcome nor
    hand anything over again, nor touch libvirt."""
    w = World(tmp_path, monkeypatch, here=None, there=FakeDom())
    cached = _stale_copy(w)
    w.obj["spec"].update(nodeName="n2", migration=cached["spec"]["migration"])
    w.obj["metadata"]["labels"][NODE_LABEL] = "n2"
    w.obj["status"]["migration"].update(phase="Succeeded", result="Succeeded", message="the domain runs on node n2")
    stored = copy.deepcopy(w.obj)
    assert w.migrations.handle(cached, None) is True  # not this node's any more: the lifecycle keeps off too
    assert w.obj == stored and w.kube.writes == 0 and w.kube.opened == []


def test_a_stale_recovery_never_takes_back_an_instance_that_came_back_by_a_later_migration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The field case: op-1 (n1 -> n2) done, a drain moved the VM on, op-2 brought it back here.
    The informer's copy still says op-1 in flight: recovering from it would find no domain on n2,
    write op-1 Failed over op-2's record, or (had n2 the domain) hand the instance to n2 while
    its domain runs here. Decided on the stored instance, op-2 is done and the lifecycle owns it."""
    w = World(tmp_path, monkeypatch, here=FakeDom(), there=None)
    cached = _stale_copy(w)
    w.obj["spec"]["migration"] = {"id": "op-2", "targetNode": "n1", "targetAddress": "10.0.0.1"}
    w.obj["status"]["migration"] = {"id": "op-2", "phase": "Succeeded", "result": "Succeeded", "sourceNode": "n3",
                                    "targetNode": "n1"}
    stored = copy.deepcopy(w.obj)
    dom = DomainStatus(name="dvp-ns1_vm1", state=libvirt.VIR_DOMAIN_RUNNING, reason=0, xml=XML)
    assert w.migrations.handle(cached, dom) is False
    assert w.obj == stored and w.kube.writes == 0 and w.kube.opened == [] and w.removed == []


def test_a_status_write_the_node_authorizer_refuses_is_not_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = World(tmp_path, monkeypatch, here=None, there=None)
    w.obj["spec"]["nodeName"] = "n2"
    w.obj["metadata"]["labels"][NODE_LABEL] = "n2"
    req = mod.MigrationRequest(id="op-1", target_node="n2", target_address="10.0.0.2")
    started = time.monotonic()
    assert w.migrations._write(w.obj, req, {"phase": mod.MigrationPhase.SUCCEEDED}) is None
    assert w.kube.writes == 1 and time.monotonic() - started < 1, "a terminal write retries only what may pass later"


@pytest.mark.parametrize(("phase", "source", "request_id"), [
    ("Succeeded", "n1", None),  # ended: nothing to recover
    ("Migrating", "n3", None),  # another node's migration
    ("Migrating", "n1", "op-1"),  # still requested: the ordinary path (not withdrawn)
])
def test_no_withdrawn_migration_to_recover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phase: str,
                                          source: str, request_id: str | None) -> None:
    request = {"id": request_id, "targetNode": "n2", "targetAddress": "10.0.0.9"} if request_id else None
    w = World(tmp_path, monkeypatch, here=FakeDom(), there=None, phase=phase, request=request)
    w.obj["status"]["migration"]["sourceNode"] = source
    assert w.migrations._orphan(w.obj, None if request is None else mod.MigrationRequest.parse(w.obj["spec"])) is None


# -- the lifecycle's guard -----------------------------------------------------------------------
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SPEC = parse_instance({"metadata": {"name": "vm1", "namespace": "ns1", "uid": UID},
                       "spec": {"nodeName": "n1", "cpu": {"cores": 1}, "memory": {"size": "1Gi"}, "runState": "Running"}})


@pytest.mark.parametrize(("phase", "source", "node", "starts"), [
    ("Migrating", "n1", "n1", False),
    ("Preparing", "n1", "n1", False),
    ("Migrating", "n1", None, False),
    ("Failed", "n1", "n1", True),
    ("Succeeded", "n1", "n1", True),
    ("Migrating", "n3", "n1", True),  # another node's migration says nothing about this one
])
def test_the_lifecycle_never_starts_an_instance_whose_migration_from_here_has_not_settled(
        phase: str, source: str, node: str | None, starts: bool) -> None:
    status = {"migration": {"id": "op-1", "phase": phase, "sourceNode": source, "targetNode": "n2"}}
    p = plan(SPEC, status, None, now=NOW, poll=0.5, node=node)
    assert (p.action is Action.START) is starts
    if not starts:
        assert "live migration op-1 to node n2 has not settled" in p.message and not p.status


def test_an_unreadable_stored_instance_stops_the_reconcile_for_the_controllers_retry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API server away: the recovery is not decided on the informer's copy, and `handle`
    raises, so the reconcile stops before the lifecycle and the controller retries with backoff."""
    w = World(tmp_path, monkeypatch, here=None, there=FakeDom())

    def away(*_a: Any, **_k: Any) -> dict[str, Any] | None:
        raise OSError("connection refused")

    monkeypatch.setattr(w.kube, "get_or_none", away)
    with pytest.raises(OSError):
        w.handle()
    assert w.kube.writes == 0 and w.kube.opened == [] and w.requeued == []
