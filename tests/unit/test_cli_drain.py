"""`dvp node drain` (controlplane/common/drain.py) against a fake API: the node is cordoned, every
running VM of it gets an Evict, a VM that cannot migrate is named with the reason and fails the
drain (or is stopped with --force-stop), and each VM's outcome and new node are reported."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from controlplane.cli import node as node_cli
from controlplane.common.drain import drain


class FakeKube:
    """Nodes, VMs and VMOPs; a VMOP completes on its second read (its VM then runs on n2), and its
    watch tells of that change right after the first read."""

    def __init__(self, vms: list[dict[str, Any]]) -> None:
        self.nodes: dict[str, dict[str, Any]] = {"n1": {"metadata": {"name": "n1"}, "spec": {}}}
        self.vms = {vm["metadata"]["name"]: vm for vm in vms}
        self.ops: dict[str, dict[str, Any]] = {}
        self.reads: dict[str, int] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()

    def watch(self, res: Any, namespace: str | None = None, **_: Any) -> Iterator[dict[str, Any]]:
        while True:
            yield self.events.get()

    def changed(self, op: dict[str, Any]) -> None:
        self.events.put({"type": "MODIFIED", "object": op})

    def get_or_none(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if res.kind == "Node":
            return self.nodes.get(name)
        if res.kind == "VirtualMachine":
            return self.vms.get(name)
        op = self.ops.get(name)
        if op is None:
            return None
        self.reads[name] = self.reads.get(name, 0) + 1
        if self.reads[name] == 1:
            self.changed(op)
        if self.reads[name] >= 2:
            op["status"] = {"phase": "Completed", "conditions": [{"type": "Completed", "message": "done"}]}
            if op["spec"]["type"] == "Evict":
                self.vms[op["spec"]["virtualMachineName"]]["status"]["nodeName"] = "n2"
        return op

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.nodes[name]["spec"].update(body["spec"])
        return self.nodes[name]

    def list(self, res: Any, namespace: str | None = None) -> dict[str, Any]:
        return {"items": list(self.vms.values())}

    def create(self, res: Any, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        name = obj["metadata"]["generateName"] + str(len(self.ops))
        self.ops[name] = {**obj, "metadata": {**obj["metadata"], "name": name}}
        return self.ops[name]


def _vm(name: str, *, node: str = "n1", phase: str = "Running", iso: bool = False) -> dict[str, Any]:
    conds = [{"type": "Migratable", "status": "False", "message": "disk iso is a CD-ROM from the local ISO /x.iso"}] \
        if iso else [{"type": "Migratable", "status": "True"}]
    return {"metadata": {"name": name, "namespace": "ns"}, "status": {"phase": phase, "nodeName": node,
                                                                      "conditions": conds}}


def test_drain_cordons_and_evicts_every_running_vm() -> None:
    kube = FakeKube([_vm("a"), _vm("b"), _vm("off", phase="Stopped"), _vm("elsewhere", node="n2")])
    seen: list[int] = []
    result = drain(kube, "n1", timeout=30, poll=0, progress=lambda vms: seen.append(len(vms)))  # type: ignore[arg-type]
    assert kube.nodes["n1"]["spec"]["unschedulable"] is True
    assert sorted(v.name for v in result.vms) == ["a", "b"] and result.ok and seen
    assert {op["spec"]["type"] for op in kube.ops.values()} == {"Evict"}
    assert all(v.target == "n2" and v.phase == "Completed" for v in result.vms)


@pytest.mark.parametrize("force_stop", [False, True], ids=["fails", "force-stop"])
def test_a_vm_that_cannot_migrate_is_named(force_stop: bool) -> None:
    kube = FakeKube([_vm("a"), _vm("cd", iso=True)])
    result = drain(kube, "n1", timeout=30, poll=0, force_stop=force_stop)  # type: ignore[arg-type]
    cd = next(v for v in result.vms if v.name == "cd")
    assert "local ISO /x.iso" in cd.message
    if force_stop:
        assert result.ok and cd.action == "Stop" and cd.phase == "Completed"
    else:
        assert not result.ok and cd.action == "None" and "--force-stop" in cd.message
        assert [op["spec"]["virtualMachineName"] for op in kube.ops.values()] == ["a"]


def test_an_operation_that_changes_wakes_the_drain_at_once() -> None:
    """No periodic look for a minute: the watch alone ends each wait."""
    class Later(FakeKube):  # the operation completes 0.2 s after its creation, and says so
        def get_or_none(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
            return self.ops.get(name) if res.kind == "VirtualMachineOperation" else super().get_or_none(res, name)

        def create(self, res: Any, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
            op = super().create(res, obj, namespace)

            def complete() -> None:
                op["status"] = {"phase": "Completed", "conditions": [{"type": "Completed", "message": "moved"}]}
                self.vms[op["spec"]["virtualMachineName"]]["status"]["nodeName"] = "n2"
                self.changed(op)
            threading.Timer(0.2, complete).start()
            return op

    t0 = time.monotonic()
    result = drain(Later([_vm("a"), _vm("b")]), "n1", timeout=120, poll=60)  # type: ignore[arg-type]
    assert result.ok and [v.target for v in result.vms] == ["n2", "n2"]
    assert time.monotonic() - t0 < 10, "the drain waited for its periodic look instead of the watch"


def test_unknown_node_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="node 'nope' does not exist"):
        drain(FakeKube([]), "nope", timeout=1)  # type: ignore[arg-type]


def test_drain_json_output(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube([_vm("a"), _vm("cd", iso=True)])
    monkeypatch.setattr(node_cli, "_kube", lambda _k: kube)
    out = CliRunner().invoke(node_cli.node, ["drain", "n1", "-o", "json"])
    assert out.exit_code == 1, out.output
    doc = json.loads(out.output)
    assert doc["node"] == "n1" and doc["ok"] is False
    assert {v["name"]: v["phase"] for v in doc["vms"]} == {"a": "Completed", "cd": "Failed"}


def test_cordon_and_uncordon_json_name_the_vms_that_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube([_vm("a"), _vm("b", node="n2"), _vm("off", phase="Stopped")])
    monkeypatch.setattr(node_cli, "_kube", lambda _k: kube)
    out = CliRunner().invoke(node_cli.node, ["cordon", "n1", "-o", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"node": "n1", "unschedulable": True, "runningVMs": ["ns/a"]}
    assert kube.nodes["n1"]["spec"]["unschedulable"] is True
    out = CliRunner().invoke(node_cli.node, ["uncordon", "n1"])
    assert out.exit_code == 0 and out.output.strip() == "node/n1 uncordoned", out.output
    assert kube.nodes["n1"]["spec"]["unschedulable"] is None  # the field is removed, as kubectl does


def test_cordon_of_an_unknown_node_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from controlplane.common.kube.client import KubeError

    class NoNodes(FakeKube):
        def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
            raise KubeError(404, "NotFound", f'nodes "{name}" not found')

    monkeypatch.setattr(node_cli, "_kube", lambda _k: NoNodes([]))
    out = CliRunner().invoke(node_cli.node, ["cordon", "ghost"])
    assert out.exit_code == 1 and 'node/ghost: nodes "ghost" not found' in out.output, out.output


def test_the_drain_names_the_kinds_as_the_api_defines_them() -> None:
    # controlplane.common may not import controlplane.api (the installer runs the drain too)
    from controlplane.api import resources
    from controlplane.common import drain as common_drain

    assert common_drain.VIRTUAL_MACHINES == resources.VIRTUAL_MACHINES
    assert common_drain.VIRTUAL_MACHINE_OPERATIONS == resources.VIRTUAL_MACHINE_OPERATIONS


def test_the_drain_reports_the_node_a_vm_went_to_not_the_one_it_left() -> None:
    """The VM controller may show the new node a moment after the operation completes."""
    class Lagging(FakeKube):
        def __init__(self, vms: list[dict[str, Any]]) -> None:
            super().__init__(vms)
            self.vm_reads = 0

        def get_or_none(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
            if res.kind == "VirtualMachine":
                self.vm_reads += 1
                return _vm(name, node="n1" if self.vm_reads < 3 else "n2")  # its status lags
            if res.kind == "VirtualMachineOperation":
                op = self.ops[name]
                op["status"] = {"phase": "Completed", "conditions": [{"type": "Completed", "message": "moved"}]}
                return op
            return super().get_or_none(res, name, namespace)

    kube = Lagging([_vm("a")])
    result = drain(kube, "n1", timeout=30, poll=0)  # type: ignore[arg-type]
    assert result.ok and [v.target for v in result.vms] == ["n2"] and kube.vm_reads == 3


def test_a_moved_vm_that_never_shows_a_new_node_does_not_hold_the_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stopped(FakeKube):  # the VM stopped right after its move: its status names no node
        def get_or_none(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
            if res.kind == "VirtualMachine":
                return _vm(name, node="", phase="Stopped")
            if res.kind == "VirtualMachineOperation":
                op = self.ops[name]
                op["status"] = {"phase": "Completed", "conditions": [{"type": "Completed", "message": "moved"}]}
                return op
            return super().get_or_none(res, name, namespace)

    monkeypatch.setattr("controlplane.common.drain.SETTLE", 0.2)
    t0 = time.monotonic()
    result = drain(Stopped([_vm("a")]), "n1", timeout=30, poll=0.05)  # type: ignore[arg-type]
    assert result.ok and [v.target for v in result.vms] == [""] and time.monotonic() - t0 < 5
