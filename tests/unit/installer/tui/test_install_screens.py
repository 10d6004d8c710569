"""The install itself: confirming starts the runner in a worker thread, its events are drawn
on the progress screen (phases, per-host tasks and counts, log pane), and the done screen
shows the kubeconfig, API and next commands — or the failed phase, reason and how to resume."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.widgets import DataTable, ProgressBar, RichLog, Static

from installer.install.events import PHASES, InstallResult, LogLine, PhaseFinished, PhaseStarted, TaskProgress
from installer.tui.screens.done import DoneScreen
from installer.tui.screens.hosts import HostsScreen
from installer.tui.screens.preflight import PreflightScreen
from installer.tui.screens.progress import ProgressScreen
from installer.tui.screens.review import ConfirmInstall, ReviewScreen
from installer.tui.screens.settings import SettingsScreen
from installer.tui.screens.welcome import WelcomeScreen
from tests.unit.installer.tui.conftest import SIZE, FakeRunner, wait_for


async def confirm_install(pilot, app) -> None:  # type: ignore[no-untyped-def]
    for screen, key in ((WelcomeScreen, "ctrl+n"), (HostsScreen, "ctrl+n"), (PreflightScreen, None),
                        (SettingsScreen, "ctrl+n"), (ReviewScreen, "ctrl+n"), (ConfirmInstall, "y")):
        await wait_for(pilot, lambda s=screen: isinstance(app.screen, s))
        if key is None:
            await wait_for(pilot, lambda: app.screen.report is not None)
            key = "ctrl+n"
        await pilot.press(key)


def cells(table: DataTable, key: str) -> list[str]:  # type: ignore[type-arg]
    return [str(c) for c in table.get_row(key)]


async def test_progress_renders_the_engine_events_then_done_shows_the_next_steps(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()

    def script(sink):  # type: ignore[no-untyped-def]
        sink(PhaseStarted("validate", ("localhost",)))
        sink(PhaseFinished("validate", "ok", 0.2))
        sink(PhaseStarted("preflight", ("localhost",)))
        sink(PhaseFinished("preflight", "done-before", 0.0))
        sink(PhaseStarted("prepare", ("localhost",)))
        sink(TaskProgress("prepare", "localhost", "node_prepare : install packages", ok=3, changed=1))
        sink(TaskProgress("prepare", "localhost", "node_prepare : load kernel modules", ok=5, changed=2, failed=0))
        sink(LogLine("prepare", "changed: [localhost] => qemu-system-x86", host="localhost"))

    result = InstallResult(ok=True, run_dir=tmp_path / "runs" / "1", kubeconfig=Path("/var/lib/dvp/server/kubeconfig"),
                           api_url="https://192.0.2.10:6443",
                           next_steps=["export KUBECONFIG=/var/lib/dvp/server/kubeconfig",
                                       "kubectl apply -f examples/06-vm-linux.yaml"])
    runner = FakeRunner(result, script=script, gate=gate)
    app = build(runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await confirm_install(pilot, app)
        await wait_for(pilot, lambda: isinstance(app.screen, ProgressScreen) and "prepare/localhost" in app.screen.tasks
                       and app.screen.tasks["prepare/localhost"].ok == 5 and app.screen.lines)
        screen = app.screen
        phases = screen.query_one("#phases", DataTable)
        assert cells(phases, "validate")[:3] == ["validate", "ok", "0:00"]
        assert cells(phases, "preflight")[1] == "done-before"
        assert cells(phases, "prepare")[1] == "running"
        assert cells(phases, "verify")[1] == "pending"
        assert screen.query_one("#overall", ProgressBar).progress == 2
        tasks = screen.query_one("#tasks", DataTable)
        assert cells(tasks, "prepare/localhost") == ["prepare", "localhost", "node_prepare : load kernel modules",
                                                      "5", "2", "0", "0"]
        await wait_for(pilot, lambda: len(screen.lines) == 6)
        assert screen.lines[-1] == "[prepare] localhost: changed: [localhost] => qemu-system-x86"
        assert screen.query_one("#log", RichLog).lines
        await pilot.press("escape", "ctrl+q")  # no way back, no quitting while it runs
        assert app.screen is screen and app.is_running
        assert [c[0].hosts[0].address for c in runner.calls] == ["localhost"]

        gate.set()
        await wait_for(pilot, lambda: isinstance(app.screen, DoneScreen))
        summary = str(app.screen.query_one("#summary", Static).render())
        assert "The platform is installed." in summary
        assert "kubeconfig: /var/lib/dvp/server/kubeconfig" in summary
        assert "API:        https://192.0.2.10:6443" in summary
        assert "  kubectl apply -f examples/06-vm-linux.yaml" in summary
        await pilot.press("q")
    assert app.return_value == 0 and app.return_code == 0


async def test_a_failed_install_names_phase_host_and_reason_and_how_to_resume(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    message = "host localhost, task node_prepare : install packages: No package matching 'qemu-nope' is available"

    def script(sink):  # type: ignore[no-untyped-def]
        sink(PhaseStarted("prepare", ("localhost",)))
        sink(TaskProgress("prepare", "localhost", "node_prepare : install packages", ok=2, failed=1))
        sink(PhaseFinished("prepare", "failed", 3.5, message))

    runner = FakeRunner(InstallResult(ok=False, run_dir=tmp_path / "runs" / "2", failed_phase="prepare",
                                      message=message), script=script)
    app = build(runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await confirm_install(pilot, app)
        await wait_for(pilot, lambda: isinstance(app.screen, DoneScreen))
        summary = str(app.screen.query_one("#summary", Static).render())
        assert "The install failed in phase prepare." in summary
        assert message in summary
        assert "dvp install --resume" in summary
        assert str(tmp_path / "runs" / "2") in summary
        await pilot.press("q")
    assert app.return_value == 1 and app.return_code == 1


async def test_a_crashing_runner_ends_on_the_done_screen(build) -> None:  # type: ignore[no-untyped-def]
    def crash(config, options, sink):  # type: ignore[no-untyped-def]
        sink(PhaseStarted("bootstrap", ("localhost",)))
        raise OSError("disk full")

    app = build(runner=crash)
    async with app.run_test(size=SIZE) as pilot:
        await confirm_install(pilot, app)
        await wait_for(pilot, lambda: isinstance(app.screen, DoneScreen))
        summary = str(app.screen.query_one("#summary", Static).render())
        assert "The install failed in phase bootstrap." in summary
        assert "the installer stopped: OSError: disk full" in summary


def test_every_phase_has_a_row() -> None:
    screen = ProgressScreen("x")
    assert list(screen.phase_status) == list(PHASES)
