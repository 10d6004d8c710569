"""`dvp upgrade --reboot` against fake hosts and a fake API: the plan shows cordon, drain, reboot
and uncordon per host; the engine drains each host before replacing its binary (VMs to upgraded
Nodes when one can take them), reboots it, waits for it (new boot id, or a new service process
when the "reboot" restarts services only), uncordons it, and records every step; a VM that cannot
move names itself and rolls the upgrade back (or is stopped with --force-stop); a single host
refuses without --yes, naming the VMs that would restart.

The hosts are `World` state changed by the commands the engine runs; the health checks read the
same state (their own logic is tested in test_policy.py and the integration tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controlplane.common.clusterversions import HANDLER_VERSION
from installer import hostlayout
from installer.ssh.process import CommandResult
from installer.ssh.target import Endpoint, SSHTarget
from installer.upgrade import engine as enginemod
from installer.upgrade import run as runmod
from installer.upgrade.bundle import Bundle
from installer.upgrade.engine import Engine, StepFailed, UpgradeSettings
from installer.upgrade.health import Verdict
from installer.upgrade.plan import build_plan
from installer.upgrade.platform import PlatformHost
from installer.upgrade.reboot import BOOT_ID, DEFAULT_REBOOT_COMMAND, REBOOTED
from installer.upgrade.records import REBOOT_PASS_STEPS, STEP_NAMES, HostRecord, UpgradeRecord
from installer.upgrade.remote import RemoteError

OLD, NEW = "a" * 64, "b" * 64
LAB_REBOOT = "lab-restart-services"


@dataclass
class Host:
    name: str
    files: dict[str, str] = field(default_factory=lambda: {hostlayout.BINARY: OLD})
    running: str = OLD  # the binary the service process runs
    boot: int = 1
    pid: int = 100
    down_polls: int = 0  # SSH answers again after this many reconnects
    reboot_down_polls: int = 2


@dataclass
class World:
    hosts: dict[str, Host]
    events: list[str] = field(default_factory=list)
    kernel_reboots: bool = True


def _res(out: str = "", status: int = 0) -> CommandResult:
    return CommandResult(exit_status=status, stdout=out.encode(), stderr=b"", duration=0.0)


class FakeSession:
    def __init__(self, world: World, host: Host) -> None:
        self.world, self.host = world, host

    def sha256(self, path: str) -> str | None:
        return self.host.files.get(path)

    def upload(self, local: Path, path: str, *, sha256: str, what: str = "") -> None:
        self.host.files[path] = sha256

    def root(self, command: str, *, what: str, timeout: float | None = None, check: bool = True,
             stdin: bytes = b"") -> CommandResult:
        h, ev = self.host, self.world.events
        if h.down_polls:
            raise RemoteError(h.name, what, "connection refused")
        if command.endswith("--version"):
            return _res("dvp, version 0.2.0")
        if command.startswith(f"cp -p {hostlayout.BINARY} "):
            h.files[hostlayout.BINARY_PREVIOUS] = h.files[hostlayout.BINARY]
        elif command.startswith("cp -p"):  # rollback: the previous binary back
            h.files[hostlayout.BINARY] = h.files[hostlayout.BINARY_PREVIOUS]
        elif command.startswith("mv -f") and command.endswith(hostlayout.BINARY):
            h.files[hostlayout.BINARY] = h.files.pop(next(p for p in h.files if ".dvp.upgrade-" in p))
            ev.append(f"{h.name} replace")
        elif command.startswith("rm -f ") and ".dvp.upgrade-" in command:
            h.files = {p: v for p, v in h.files.items() if ".dvp.upgrade-" not in p}
        elif "datastore backup" in command:
            return _res(json.dumps({"objects": 3, "dataVersion": 1}))
        elif BOOT_ID in command:
            return _res(f"boot-{h.boot} {h.pid}")
        elif command in (DEFAULT_REBOOT_COMMAND, LAB_REBOOT):
            ev.append(f"{h.name} reboot")
            h.running, h.pid = h.files[hostlayout.BINARY], h.pid + 1
            if self.world.kernel_reboots:
                h.boot += 1
                h.down_polls = h.reboot_down_polls
                raise RemoteError(h.name, what, "connection reset")
        elif " restart" in command or "restart;" in command:
            ev.append(f"{h.name} restart")
            h.running, h.pid = h.files[hostlayout.BINARY], h.pid + 1
        return _res()


class FakePlatform:
    def __init__(self, world: World, roles: list[tuple[str, str]]) -> None:
        self.world = world
        self.hosts = []
        for name, role in roles:
            target = SSHTarget(name=name, host=None, endpoint=Endpoint(address=name, port=22, user="root"))  # type: ignore[arg-type]
            self.hosts.append(PlatformHost(name, role, target, node=f"node-{name}",
                                           session=FakeSession(world, world.hosts[name])))  # type: ignore[arg-type]

    @property
    def server(self) -> PlatformHost:
        return self.hosts[0]

    def reconnect(self, h: PlatformHost) -> None:
        host = self.world.hosts[h.name]
        if host.down_polls:
            host.down_polls -= 1
            raise RemoteError(h.name, "connecting", "connection refused")


class FakeKube:
    """Nodes and VMs; a VMOP completes on its first read, moving its VM to an eligible node."""

    def __init__(self, world: World, vms: dict[str, str], *, stuck: str = "") -> None:
        self.world = world
        self.nodes: dict[str, dict[str, Any]] = {f"node-{n}": {"metadata": {"name": f"node-{n}", "labels": {HANDLER_VERSION: "0.1.0"}},
                                    "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
                      for n in world.hosts}
        self.vms: dict[str, dict[str, Any]] = {name: {"metadata": {"name": name, "namespace": "ns"}, "status": {
            "phase": "Running", "nodeName": node, "conditions": [
                {"type": "Migratable", "status": "False" if name == stuck else "True", "message": "a local ISO"}]}}
            for name, node in vms.items()}
        self.ops: list[dict[str, Any]] = []

    def list(self, res: Any, namespace: str | None = None) -> dict[str, Any]:
        if res.kind == "Node":
            for name, node in self.nodes.items():  # a handler reports the binary its service runs
                running = self.world.hosts[name.removeprefix("node-")].running
                node["metadata"]["labels"][HANDLER_VERSION] = "0.2.0" if running == NEW else "0.1.0"
            return {"items": list(self.nodes.values())}
        return {"items": list(self.vms.values())}

    def get_or_none(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if res.kind == "Node":
            return self.nodes.get(name)
        if res.kind == "VirtualMachine":
            return self.vms.get(name)
        op = next(o for o in self.ops if o["metadata"]["name"] == name)
        if "status" not in op:
            vm = self.vms[op["spec"]["virtualMachineName"]]
            source = vm["status"]["nodeName"]
            want = (op["spec"].get("migrate") or {}).get("nodeSelector") or {}
            nodes = self.list(type("R", (), {"kind": "Node"}))["items"]
            fit = sorted(n["metadata"]["name"] for n in nodes if n["metadata"]["name"] != source
                         and not n["spec"].get("unschedulable")
                         and all(n["metadata"]["labels"].get(k) == v for k, v in want.items()))
            if op["spec"]["type"] == "Stop":
                vm["status"]["phase"] = "Stopped"
            else:
                vm["status"]["nodeName"] = fit[0]
            self.world.events.append(f"{op['spec']['type']} {vm['metadata']['name']} {source}->"
                                     f"{vm['status']['nodeName'] if op['spec']['type'] != 'Stop' else 'stopped'}")
            op["status"] = {"phase": "Completed"}
        return op

    def create(self, res: Any, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        obj = {**obj, "metadata": {**obj["metadata"], "name": f"op{len(self.ops)}"}}
        self.ops.append(obj)
        return obj

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        if "metadata" in body:  # labels: a merge patch (None removes)
            labels = self.nodes[name]["metadata"]["labels"]
            for key, value in body["metadata"]["labels"].items():
                if value is None:
                    labels.pop(key, None)
                else:
                    labels[key] = value
            return self.nodes[name]
        on = bool(body["spec"]["unschedulable"])
        if on != bool(self.nodes[name]["spec"].get("unschedulable")):  # the drain cordons again: no change
            self.world.events.append(f"{'cordon' if on else 'uncordon'} {name}")
        self.nodes[name]["spec"]["unschedulable"] = on
        return self.nodes[name]


class FakeStore:
    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []

    def save(self, record: UpgradeRecord) -> None:
        self.saved.append(record.to_json())


def _verdicts(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    """Healthy when the host's service runs the binary of `version`."""
    def node(kube: Any, host: PlatformHost, version: str, **kw: Any) -> Verdict:
        running = world.hosts[host.name].running
        ok = (running == NEW) == (version == "0.2.0")
        return Verdict(ok, f"{host.name} runs {'0.2.0' if running == NEW else '0.1.0'}")

    monkeypatch.setattr(enginemod, "server_verdict", lambda kube, host, version: Verdict(True, "server"))
    monkeypatch.setattr(enginemod, "node_verdict", node)
    monkeypatch.setattr(enginemod, "running_domains", lambda host: {})


def _engine(world: World, kube: FakeKube, *, names: list[str], command: str = DEFAULT_REBOOT_COMMAND,
            force_stop: bool = False, data_version: int = 1) -> tuple[Engine, UpgradeRecord, FakeStore]:
    roles = [(n, "master" if i == 0 else "worker") for i, n in enumerate(names)]
    platform = FakePlatform(world, roles)
    record = UpgradeRecord.new(from_version="0.1.0", to_version="0.2.0", from_sha256=OLD, to_sha256=NEW,
                               reboot=True, reboot_command=command, force_stop=force_stop,
                               from_data_version=1, to_data_version=data_version)
    record.hosts = [HostRecord(h.name, h.role, h.node) for h in platform.hosts]
    bundle = Bundle(path=Path("/tmp/dvp-b"), version="0.2.0", data_version=data_version, sha256=NEW, size=1 << 20)
    store = FakeStore()
    engine = Engine(platform, kube, record, store, bundle=bundle, report=lambda *a: None,  # type: ignore[arg-type]
                    settings=UpgradeSettings(poll_every=0.0, node_timeout=2, server_timeout=2, drain_timeout=5))
    return engine, record, store


def _world(names: list[str], **kw: Any) -> World:
    return World({n: Host(n) for n in names}, **kw)


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel-reboot", "services-restart"])
def test_each_host_is_drained_to_upgraded_nodes_rebooted_and_uncordoned(monkeypatch: pytest.MonkeyPatch,
                                                                         kernel: bool) -> None:
    names = ["m", "w1", "w2"]
    world = _world(names, kernel_reboots=kernel)
    _verdicts(monkeypatch, world)
    kube = FakeKube(world, {"vm-a": "node-w1", "vm-b": "node-w2"})
    engine, record, store = _engine(world, kube, names=names, command=DEFAULT_REBOOT_COMMAND if kernel else LAB_REBOOT)
    engine.run()
    assert world.events == [
        "cordon node-m", "m replace", "m reboot", "uncordon node-m",
        "cordon node-w1", "Migrate vm-a node-w1->node-m", "w1 replace", "w1 reboot", "uncordon node-w1",
        # the fewest-instances choice of the fake is by name: node-m and node-w1 are both upgraded
        "cordon node-w2", "Migrate vm-b node-w2->node-m", "w2 replace", "w2 reboot", "uncordon node-w2",
    ]
    assert record.state == "succeeded" and all(h.files[hostlayout.BINARY] == NEW for h in world.hosts.values())
    assert all(op["spec"]["migrate"]["nodeSelector"] == {HANDLER_VERSION: "0.2.0"} for op in kube.ops)
    steps = [s.name for s in record.host("w1").steps]
    assert steps == ["stage", "previous", "cordon", "drain", "replace", "reboot", "health", "uncordon"]
    assert [s for s in STEP_NAMES if s in steps] == steps  # the recorded order is the documented one
    reboot = next(s for s in record.host("w1").steps if s.name == "reboot")
    assert ("boot id" in reboot.message) == kernel and ("same kernel" in reboot.message) == (not kernel)
    assert "vm-a -> node-m" in next(s for s in record.host("w1").steps if s.name == "drain").message
    assert store.saved[-1]["reboot"] is True and store.saved[-1]["reboot_command"]


def test_first_host_drained_evicts_anywhere_when_no_node_is_upgraded(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["m", "w1"]
    world = _world(names)
    _verdicts(monkeypatch, world)
    kube = FakeKube(world, {"vm-a": "node-m"})
    engine, record, _ = _engine(world, kube, names=names)
    engine.run()
    assert kube.ops[0]["spec"]["type"] == "Evict" and "migrate" not in kube.ops[0]["spec"]
    assert "Evict vm-a node-m->node-w1" in world.events


def test_a_vm_that_cannot_move_is_named_and_the_upgrade_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["m", "w1", "w2"]
    world = _world(names)
    _verdicts(monkeypatch, world)
    kube = FakeKube(world, {"vm-a": "node-w1", "iso-vm": "node-w1"}, stuck="iso-vm")
    engine, record, _ = _engine(world, kube, names=names)
    with pytest.raises(StepFailed) as err:
        engine.run()
    assert err.value.host == "w1" and err.value.step == "drain"
    assert "ns/iso-vm" in err.value.reason and "a local ISO" in err.value.reason and "--force-stop" in err.value.reason
    assert record.state == "rolled-back" and record.failure["step"] == "drain"
    assert all(h.files[hostlayout.BINARY] == OLD and h.running == OLD for h in world.hosts.values())
    assert not any(n["spec"].get("unschedulable") for n in kube.nodes.values())  # every Node uncordoned
    assert "w1 replace" not in world.events  # nothing replaced on the host that could not be drained


def test_force_stop_stops_the_vm_that_cannot_move(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["m", "w1"]
    world = _world(names)
    _verdicts(monkeypatch, world)
    kube = FakeKube(world, {"iso-vm": "node-w1"}, stuck="iso-vm")
    engine, record, _ = _engine(world, kube, names=names, force_stop=True)
    engine.run()
    assert "Stop iso-vm node-w1->stopped" in world.events and record.state == "succeeded"


def test_a_host_that_does_not_come_back_fails_the_reboot_and_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["m", "w1"]
    world = _world(names)
    _verdicts(monkeypatch, world)
    engine, record, _ = _engine(world, FakeKube(world, {}), names=names)
    engine.settings = UpgradeSettings(poll_every=0.01, node_timeout=2, server_timeout=2, reboot_timeout=0.05)
    world.hosts["m"].reboot_down_polls = 10**6
    with pytest.raises(StepFailed) as err:
        engine.run()
    # the host is still away, so its rollback cannot run either: the record says both
    assert err.value.step == "rollback" and record.state == "rollback-failed"
    assert record.failure["host"] == "m" and record.failure["step"] == "reboot"
    assert "not back within" in record.failure["reason"] and "connection refused" in record.failure["reason"]


def test_a_resumed_run_skips_the_drain_and_reboot_already_done(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["m", "w1"]
    world = _world(names)
    _verdicts(monkeypatch, world)
    kube = FakeKube(world, {"vm-a": "node-w1"})
    engine, record, _ = _engine(world, kube, names=names)
    engine.run()
    # the same record, as a killed installer would leave it after w1's reboot
    w1 = record.host("w1")
    w1.state, w1.steps = "upgrading", [s for s in w1.steps if s.name not in ("health", "uncordon")]
    record.state = "running"
    kube.nodes["node-w1"]["spec"]["unschedulable"] = True
    world.events.clear()
    again = Engine(engine.platform, kube, record, FakeStore(), bundle=engine.bundle, report=lambda *a: None,  # type: ignore[arg-type]
                   settings=engine.settings)
    again.run()
    assert world.events == ["uncordon node-w1"] and record.state == "succeeded"


def _plan(names: list[str], reboot: str | None, vms: dict[str, str], *, data_version: int = 1) -> dict[str, Any]:
    world = _world(names)
    platform = FakePlatform(world, [(n, "master" if i == 0 else "worker") for i, n in enumerate(names)])
    instances = [{"metadata": {"name": vm, "namespace": "ns"}, "spec": {"nodeName": node}, "status": {"phase": "Running"}}
                 for vm, node in vms.items()]
    bundle = Bundle(path=Path("/tmp/dvp-b"), version="0.2.0", data_version=data_version, sha256=NEW, size=1)
    return build_plan(platform, bundle, from_version="0.1.0", from_data_version=1,  # type: ignore[arg-type]
                      instances=instances, backup_path="/b.db", reboot_command=reboot).to_json()


def test_the_plan_shows_drain_and_reboot_steps() -> None:
    doc = _plan(["m", "w1", "w2"], DEFAULT_REBOOT_COMMAND, {"vm-a": "node-w1"})
    m, w1, w2 = doc["hosts"]
    assert doc["reboot"] is True and doc["rebootCommand"] == DEFAULT_REBOOT_COMMAND and doc["vmRestarts"] == []
    assert "cordon Node node-m" in m["steps"] and "uncordon Node node-m" in m["steps"]
    assert "drain: move 1 running VM(s) live to upgraded nodes (node-m) first" in w1["steps"]
    assert any(s.startswith(f"reboot the host ({DEFAULT_REBOOT_COMMAND})") for s in w2["steps"])
    assert not any(s.startswith("restart ") for s in w2["steps"]) and "move live" in w1["vmImpact"]
    plain = _plan(["m", "w1"], None, {"vm-a": "node-w1"})
    assert plain["reboot"] is False and not any("drain" in s or "reboot" in s for h in plain["hosts"] for s in h["steps"])


def test_a_single_host_reboot_lists_the_vms_that_restart_and_needs_yes(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    doc = _plan(["m"], DEFAULT_REBOOT_COMMAND, {"vm-a": "node-m", "vm-b": "node-m"})
    assert doc["vmRestarts"] == ["ns/vm-a", "ns/vm-b"] and "RESTART" in doc["hosts"][0]["vmImpact"]
    assert not any("drain" in s or "cordon" in s for s in doc["hosts"][0]["steps"])

    from controlplane.common.clusterversions import ClusterVersions

    bundle = Bundle(path=tmp_path / "dvp", version="0.2.0", data_version=1, sha256=NEW, size=1)
    monkeypatch.setattr(runmod, "inspect_bundle", lambda path, expected_sha256=None: bundle)
    monkeypatch.setattr(runmod, "cluster_versions", lambda kube: ClusterVersions(server="0.1.0", data_version=1))
    monkeypatch.setattr(runmod, "gather", lambda *a, **kw: [])
    world = _world(["m"])
    platform = FakePlatform(world, [("m", "master")])

    class Kube:
        def list(self, res: Any) -> dict[str, Any]:
            return {"items": [{"metadata": {"name": "vm-a", "namespace": "ns"}, "spec": {"nodeName": "node-m"},
                               "status": {"phase": "Running"}}]}

    request = runmod.UpgradeRequest(bundle=tmp_path / "dvp", output="json", reboot=True)
    store = FakeStore()
    assert runmod.Run(platform, request, tmp_path).start(Kube(), store) == runmod.EXIT_REFUSED  # type: ignore[arg-type]
    out = json.loads(capsys.readouterr().out)
    assert out["result"] == "refused" and out["refusals"][0]["check"] == "vms.restart"
    assert "ns/vm-a" in out["refusals"][0]["observed"] and store.saved == []


# -- a storage migration with --reboot: binaries first, then the reboots, and no rollback after the commit --


def test_a_storage_migration_upgrades_every_binary_in_place_then_drains_and_reboots(
        monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["m", "w1", "a2"]  # the fake picks targets by name: node-a2 before node-m, unless preferred
    world = _world(names)
    _verdicts(monkeypatch, world)
    kube = FakeKube(world, {"vm-a": "node-w1", "vm-b": "node-a2"})
    engine, record, store = _engine(world, kube, names=names, data_version=2)
    engine.run()
    first = world.events.index("m reboot")
    # pass 1: a binary-only upgrade (no VM moves, so the datastore backup stays true to where VMs run)
    assert world.events[:first] == [
        "m replace", "m restart",
        "cordon node-w1", "w1 replace", "w1 restart", "uncordon node-w1",
        "cordon node-a2", "a2 replace", "a2 restart", "uncordon node-a2", "cordon node-m"]
    # pass 2: each drain moves its VMs to the Nodes already rebooted (labelled), never to one still due
    assert world.events[first:] == [
        "m reboot", "uncordon node-m",
        "cordon node-w1", "Migrate vm-a node-w1->node-m", "w1 reboot", "uncordon node-w1",
        "cordon node-a2", "Migrate vm-b node-a2->node-m", "a2 reboot", "uncordon node-a2"]
    assert [op["spec"]["migrate"]["nodeSelector"] for op in kube.ops] == [{REBOOTED: record.id}] * 2
    assert not any(REBOOTED in n["metadata"]["labels"] for n in kube.nodes.values())  # removed at the end
    assert record.state == "succeeded" and record.committed
    assert [s.name for s in record.host("w1").steps] == [
        "stage", "previous", "cordon", "replace", "restart", "health", "uncordon", *REBOOT_PASS_STEPS]
    assert [s.name for s in record.host("m").steps][:3] == ["stage", "previous", "backup"]
    # the commit is saved before the first drain of the second pass
    committed_at = next(i for i, doc in enumerate(store.saved) if doc["committed"])
    assert not any(s["name"] == "drain" for doc in store.saved[:committed_at + 1] for h in doc["hosts"]
                   for s in h["steps"])


def test_a_failure_after_the_commit_is_not_rolled_back_and_the_same_bundle_finishes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["m", "w1", "w2"]
    world = _world(names)
    _verdicts(monkeypatch, world)
    kube = FakeKube(world, {"vm-a": "node-w1", "iso-vm": "node-w2"}, stuck="iso-vm")
    engine, record, _ = _engine(world, kube, names=names, data_version=2)
    with pytest.raises(StepFailed) as err:
        engine.run()
    assert (err.value.host, err.value.step) == ("w2", "drain") and "ns/iso-vm" in err.value.reason
    assert record.state == "reboots-pending" and record.committed and record.failure["host"] == "w2"
    # nothing rolled back: every host stays on the new version, the failed one schedulable again
    assert all(h.files[hostlayout.BINARY] == NEW and h.running == NEW for h in world.hosts.values())
    assert not any(s.name.startswith("rollback") for h in record.hosts for s in h.steps)
    assert not any(n["spec"].get("unschedulable") for n in kube.nodes.values())
    assert "w2 reboot" not in world.events and "Migrate vm-a node-w1->node-m" in world.events

    # a rollback is refused, by the engine and by `dvp upgrade` given another bundle (or --rollback)
    with pytest.raises(StepFailed, match="committed"):
        engine.rollback()
    other = Bundle(path=tmp_path / "dvp", version="0.3.0", data_version=2, sha256="c" * 64, size=1)
    request = runmod.UpgradeRequest(bundle=tmp_path / "dvp", output="json", reboot=True)
    store = FakeStore()
    run = runmod.Run(engine.platform, request, tmp_path)  # type: ignore[arg-type]
    assert run.resume(kube, store, record, other) == runmod.EXIT_REFUSED  # type: ignore[arg-type]
    out = json.loads(capsys.readouterr().out)
    assert out["refusals"][0]["check"] == "upgrade.committed" and "data version 2" in out["refusals"][0]["observed"]
    assert store.saved == [] and record.state == "reboots-pending"

    # the same bundle finishes the reboots once the VM can move; the hosts already rebooted stay done
    kube.vms["iso-vm"]["status"]["conditions"][0]["status"] = "True"
    world.events.clear()
    again = Engine(engine.platform, kube, record, FakeStore(), bundle=engine.bundle, report=lambda *a: None,  # type: ignore[arg-type]
                   settings=engine.settings)
    again.run()
    assert world.events == ["cordon node-w2", "Migrate iso-vm node-w2->node-m", "w2 reboot", "uncordon node-w2"]
    assert record.state == "succeeded" and record.failure == {}


def test_the_plan_of_a_storage_migration_with_reboot_has_two_passes() -> None:
    doc = _plan(["m", "w1"], DEFAULT_REBOOT_COMMAND, {"vm-a": "node-w1"}, data_version=2)
    m, w1 = doc["hosts"]
    first = [s for s in w1["steps"] if not s.startswith("pass 2: ")]
    second = [s for s in w1["steps"] if s.startswith("pass 2: ")]
    assert "restart dvp-agent" in first and not any("drain" in s or "reboot" in s for s in first)
    assert [s.split(":")[1].split()[0] for s in second] == ["cordon", "drain", "reboot", "wait", "uncordon"]
    assert "storage migrations data version 1 -> 2" in m["steps"]
    assert any("pass 2" in n and "not rolled back" in n for n in doc["notes"])
