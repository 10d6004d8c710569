"""The upgrade stages its bundle on every host at once, before any host changes
(installer/upgrade/engine.py): the copies overlap, and a host that cannot take the bundle stops
the upgrade with nothing replaced, restarted or cordoned anywhere, the others' staged copies
removed. Fake hosts and API as in test_reboot.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from installer import hostlayout
from installer.upgrade import engine as enginemod
from installer.upgrade.engine import StepFailed
from tests.unit.upgrade.test_reboot import OLD, FakeKube, FakeSession, _engine, _verdicts, _world

NAMES = ["m", "w1", "w2"]


def test_every_host_is_staged_at_once_before_any_host_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    world = _world(NAMES)
    _verdicts(monkeypatch, world)
    together = threading.Barrier(len(NAMES), timeout=5)  # broken unless the three copies overlap
    upload = FakeSession.upload

    def overlapping(self: FakeSession, local: Path, path: str, *, sha256: str, what: str = "") -> None:
        together.wait()
        world.events.append(f"{self.host.name} staged")
        upload(self, local, path, sha256=sha256, what=what)

    monkeypatch.setattr(FakeSession, "upload", overlapping)
    engine, record, _ = _engine(world, FakeKube(world, {}), names=NAMES)
    engine.run()
    assert sorted(world.events[:3]) == ["m staged", "w1 staged", "w2 staged"], world.events
    assert "m replace" in world.events[3:]
    for hr in record.hosts:  # each host's record still starts with its own stage
        assert [s.name for s in hr.steps][:2] == ["stage", "previous"], (hr.name, hr.steps)
    assert record.state == "succeeded"


def test_a_host_that_cannot_take_the_bundle_stops_the_upgrade_before_any_host_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = _world(NAMES)
    _verdicts(monkeypatch, world)
    upload = FakeSession.upload

    def full_on_w2(self: FakeSession, local: Path, path: str, *, sha256: str, what: str = "") -> None:
        if self.host.name == "w2":
            raise OSError("No space left on device")
        upload(self, local, path, sha256=sha256, what=what)

    monkeypatch.setattr(FakeSession, "upload", full_on_w2)
    engine, record, _ = _engine(world, FakeKube(world, {"vm-a": "node-w1"}), names=NAMES)
    with pytest.raises(StepFailed) as failed:
        engine.run()
    assert (failed.value.host, failed.value.step) == ("w2", "stage")
    assert "No space left on device" in failed.value.reason
    assert world.events == []  # nothing cordoned, moved, replaced, restarted or rebooted
    for host in world.hosts.values():
        assert host.files == {hostlayout.BINARY: OLD}, (host.name, host.files)  # staged copies removed
    assert record.state == "rolled-back"
    assert all(not any(s.name.startswith("rollback-") for s in hr.steps) for hr in record.hosts)


def test_a_host_that_stops_answering_while_staging_fails_the_stage_not_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its staged copy cannot be removed either: that is said, and the others' copies still go."""
    world = _world(NAMES)
    _verdicts(monkeypatch, world)
    world.hosts["w1"].down_polls = 1000  # every command after the copy: connection refused
    said: list[tuple[str, str, str, str]] = []
    engine, record, _ = _engine(world, FakeKube(world, {}), names=NAMES)
    engine.report = lambda *event: said.append(event)
    with pytest.raises(StepFailed) as failed:
        engine.run()
    assert (failed.value.host, failed.value.step) == ("w1", "stage") and "connection refused" in failed.value.reason
    assert [e for e in said if e[0] == "w1" and e[2] == "skipped"] == [
        ("w1", "stage", "skipped", f"{enginemod._staged(record)} left on the host: connection refused")]
    assert world.events == []
    assert world.hosts["m"].files == world.hosts["w2"].files == {hostlayout.BINARY: OLD}
    assert record.state == "rolled-back"
