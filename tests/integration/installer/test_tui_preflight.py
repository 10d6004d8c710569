"""The wizard's hosts and preflight steps against a real host (sshd in a network namespace):
the connection test logs in over SSH, and the live preflight table shows every check of the
catalog with the verdicts `dvp check` gives for the same host."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from installer.checks.catalog import check_names
from installer.tui.app import make_app
from installer.tui.screens.hosts import HostsScreen
from installer.tui.screens.preflight import PreflightScreen
from installer.tui.screens.welcome import WelcomeScreen
from tests.integration.installer.conftest import ConfigFactory, Lab, host
from tests.unit.installer.tui.conftest import SIZE, wait_for

pytestmark = pytest.mark.integration


async def test_connection_test_and_live_preflight_on_a_real_host(lab: Lab, make_config: ConfigFactory, tmp_path: Path) -> None:
    path = tmp_path / "install.yaml"
    make_config([host(lab["pvm-this-machine"], role="master")], profile="evaluation", write_to=path)
    app = make_app(path, None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        hosts = app.screen.query_one("#hosts", DataTable)
        await pilot.press("t")
        await wait_for(pilot, lambda: str(hosts.get_row_at(0)[5]) not in ("not tested", "testing…"), timeout=30)
        assert str(hosts.get_row_at(0)[5]).startswith(f"ok: root via ssh root@{lab['pvm-this-machine'].address}:22")

        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, PreflightScreen))
        screen = app.screen
        assert isinstance(screen, PreflightScreen)
        await wait_for(pilot, lambda: screen.report is not None, timeout=60)
        table = screen.query_one("#checks", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[1] for r in rows] == check_names()
        assert {r[0] for r in rows} == {"pvm"}
        verdicts = {r[1]: r[2] for r in rows}
        assert verdicts["connection.ssh"] == "passed"
        assert verdicts["virt.cpu_flags"] == "warning"
        assert screen.report is not None and screen.report.ok  # evaluation: warnings only

        table.move_cursor(row=check_names().index("virt.cpu_flags"))
        await pilot.pause()
        detail = str(screen.query_one("#detail", Static).render())
        assert "virt.cpu_flags on pvm: warning" in detail
        assert "no hardware virtualization; VMs will run under software emulation" in detail
        assert "observed: " in detail and "expected: " in detail
