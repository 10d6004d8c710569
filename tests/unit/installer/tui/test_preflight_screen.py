"""The preflight step: results from the listener rendered per host and check, observed /
expected / fix of the selected row, re-run, skip by name, and no way on past an error."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from installer.checks.model import Severity, Status
from installer.tui.screens.hosts import HostsScreen
from installer.tui.screens.preflight import PreflightScreen
from installer.tui.screens.settings import SettingsScreen
from installer.tui.screens.welcome import WelcomeScreen
from tests.unit.installer.tui.conftest import SIZE, FakePreflight, result, wait_for

FAILING = [
    result("connection.ssh"),
    result("virt.cpu_flags", Status.FAILED, observed="no vmx or svm flag in /proc/cpuinfo",
           expected="vmx (Intel VT-x) or svm (AMD-V)", fix="enable virtualization in the firmware",
           message="no hardware virtualization"),
    result("virt.kvm_module", Status.BLOCKED, blocked_by="virt.cpu_flags"),
    result("resources.memory", Status.FAILED, Severity.WARNING, message="7 GiB is under 8 GiB"),
]


async def to_preflight(pilot, app) -> PreflightScreen:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, PreflightScreen) and app.screen.report is not None)
    return app.screen  # type: ignore[return-value]


def table_rows(screen: PreflightScreen) -> list[list[str]]:
    table = screen.query_one("#checks", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(screen: PreflightScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_results_per_host_and_check_with_details_of_the_selected_row(build) -> None:  # type: ignore[no-untyped-def]
    app = build(preflight=FakePreflight(list(FAILING)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_preflight(pilot, app)
        assert table_rows(screen) == [
            ["localhost", "connection.ssh", "passed", ""],
            ["localhost", "virt.cpu_flags", "error", "no hardware virtualization"],
            ["localhost", "virt.kvm_module", "blocked", "blocked by virt.cpu_flags"],
            ["localhost", "resources.memory", "warning", "7 GiB is under 8 GiB"],
        ]
        assert "localhost: done: 1 passed, 1 warnings, 1 errors, 1 blocked" in text_of(screen, "#host-status")
        assert "passed (" not in text_of(screen, "#detail")  # not "passed (error)"
        await pilot.press("down")
        detail = text_of(screen, "#detail")
        assert "virt.cpu_flags on localhost: error" in detail
        assert "observed: no vmx or svm flag in /proc/cpuinfo" in detail
        assert "expected: vmx (Intel VT-x) or svm (AMD-V)" in detail
        assert "fix: enable virtualization in the firmware" in detail

        await pilot.press("ctrl+n")  # an error: refused
        await pilot.pause()
        assert app.screen is screen
        assert "1 check(s) failed with severity error: localhost/virt.cpu_flags" in text_of(screen, "#screen-error")


async def test_rerun_and_skip_by_name(build) -> None:  # type: ignore[no-untyped-def]
    fake = FakePreflight(list(FAILING))
    app = build(preflight=fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_preflight(pilot, app)
        assert len(fake.calls) == 1
        await pilot.press("r")
        await wait_for(pilot, lambda: len(fake.calls) == 2 and screen.report is not None)
        assert len(table_rows(screen)) == 4

        await pilot.press("down", "s")  # skip virt.cpu_flags
        await wait_for(pilot, lambda: len(fake.calls) == 3 and screen.report is not None)
        assert app.draft.doc["checks"]["skip"] == ["virt.cpu_flags"]
        assert fake.calls[-1].checks.skip == ["virt.cpu_flags"]
        assert table_rows(screen)[1][2] == "skipped"
        await pilot.press("ctrl+n")  # warnings do not stop the install
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))


async def test_a_crashing_preflight_is_reported_not_raised(build) -> None:  # type: ignore[no-untyped-def]
    def broken(config, listener):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    app = build(preflight=broken)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, PreflightScreen) and not app.screen.running)
        assert text_of(app.screen, "#screen-error") == "preflight stopped: RuntimeError: boom"
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, PreflightScreen)


async def test_an_invalid_setting_from_a_file_is_fixed_on_the_settings_step_then_checked(build, preflight, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "given.yaml"
    source.write_text("apiVersion: dvp.deckhouse.io/v1alpha1\nkind: InstallConfig\nhosts: [{address: localhost, role: master}]\n"
                      "virtualization: {virtualMachineCIDRs: [10.66.10.0/24], dvcrStorageSize: lots}\n")
    app = build(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, PreflightScreen))
        screen = app.screen
        assert 'virtualization.dvcrStorageSize: "lots" is not a size such as 50Gi or 500Mi' in text_of(screen, "#screen-error")
        assert preflight.calls == []
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.query_one("#dvcr-size").value = "60Gi"  # type: ignore[attr-defined]
        await pilot.press("ctrl+n")  # applies the fix (and goes on to the review)
        await pilot.pause()
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: app.screen is screen and screen.report is not None)
        assert len(preflight.calls) == 1 and preflight.calls[0].virtualization.dvcr_storage_size == "60Gi"
