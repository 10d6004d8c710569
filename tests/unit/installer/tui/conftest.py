"""Pilot helpers for the install wizard: the app built with fake preflight / install runners
(scripted, recording their calls), and `wait_for` to let worker threads report back."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from installer.checks.model import CheckResult, HostReport, PreflightReport, Severity, Status
from installer.checks.runner import PreflightListener
from installer.config.models import InstallConfig
from installer.install.events import EventSink, InstallResult
from installer.tui.app import InstallApp, make_app

SIZE = (130, 45)
LOCAL_MASTER = [{"address": "localhost", "role": "master"}]


def result(name: str, status: Status = Status.PASSED, severity: Severity = Severity.ERROR, **kw: Any) -> CheckResult:
    return CheckResult(name=name, group=name.split(".")[0], description=f"checks {name}", severity=severity,
                       status=status, **kw)


@dataclass
class FakePreflight:
    """Reports `results` for every host through the listener, like run_preflight does."""

    results: list[CheckResult] = field(default_factory=lambda: [result("connection.ssh"), result("system.kernel_version")])
    calls: list[InstallConfig] = field(default_factory=list)

    def __call__(self, config: InstallConfig, listener: PreflightListener) -> PreflightReport:
        self.calls.append(config)
        hosts = []
        for h in config.hosts:
            name = h.display_name
            listener.host_started(name, len(self.results))
            listener.host_phase(name, "connecting")
            for r in self.results:
                skipped = r.name in config.checks.skip
                r = result(r.name, Status.SKIPPED) if skipped else r
                listener.check_finished(name, r)
            report = HostReport(name=name, address=h.address, role=h.role, connection="local",
                                results=[result(r.name, Status.SKIPPED) if r.name in config.checks.skip else r
                                         for r in self.results])
            listener.host_finished(report)
            hosts.append(report)
        return PreflightReport(target=config.target, profile=config.checks.profile, started_at="now", hosts=hosts)


@dataclass
class FakeRunner:
    """Emits `script(sink)` events, optionally waits for `gate`, then returns `outcome`."""

    outcome: InstallResult
    script: Callable[[EventSink], None] = lambda sink: None
    gate: threading.Event | None = None
    calls: list[tuple[InstallConfig, Any]] = field(default_factory=list)

    def __call__(self, config: InstallConfig, options: Any, sink: EventSink) -> InstallResult:
        self.calls.append((config, options))
        self.script(sink)
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        return self.outcome


@pytest.fixture
def preflight() -> FakePreflight:
    return FakePreflight()


@pytest.fixture
def runner(tmp_path: Path) -> FakeRunner:
    return FakeRunner(InstallResult(ok=True, run_dir=tmp_path / "run"))


@pytest.fixture
def build(preflight: FakePreflight, runner: FakeRunner) -> Iterator[Callable[..., InstallApp]]:
    def factory(config_path: Path | None = None, *, hosts: list[dict[str, Any]] | None = None, **kw: Any) -> InstallApp:
        """The app; without a config file the draft gets `hosts` (default: this machine as the
        one master, which most tests start from — the wizard itself pre-fills no host)."""
        kw.setdefault("preflight", preflight)
        kw.setdefault("runner", runner)
        kw.setdefault("environ", {})
        app = make_app(config_path, None, **kw)
        if config_path is None:
            app.draft.doc["hosts"] = [dict(h) for h in (LOCAL_MASTER if hosts is None else hosts)]
            app.pristine = copy.deepcopy(app.draft.doc)
            app._drafted = copy.deepcopy(app.draft.doc)
        return app

    yield factory


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], object], *, timeout: float = 10.0) -> None:
    """Pause the pilot until `predicate()` is true (workers report through call_from_thread)."""
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"condition not met within {timeout} s: {predicate}")


async def type_into(pilot: Pilot[Any], selector: str, text: str, *, keys: bool = False) -> None:
    """Replace an input's value: pasted (fast), or typed key by key with `keys=True`."""
    from textual.widgets import Input

    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    widget.value = ""
    if keys:
        await pilot.press(*text)
    else:
        widget.insert_text_at_cursor(text)
    await pilot.pause()
