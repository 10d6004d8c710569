"""The hosts step: add, edit and remove hosts through the form, errors shown under the field
they are about (the messages `dvp config validate` prints), secrets only as references, and
the connection test of `localhost` over the real local connection."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Select, Static

from installer.tui.screens.dialogs import Confirm
from installer.tui.screens.host_form import HostForm
from installer.tui.screens.hosts import HostsScreen
from installer.tui.screens.preflight import PreflightScreen
from installer.tui.screens.welcome import WelcomeScreen
from tests.unit.installer.tui.conftest import SIZE, type_into, wait_for


async def to_hosts(pilot, app) -> HostsScreen:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
    return app.screen  # type: ignore[return-value]


def rows(screen: HostsScreen) -> list[list[str]]:
    table = screen.query_one("#hosts", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def error_of(app, widget_id: str) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(f"#{widget_id}-error", Static).content)


async def test_no_host_is_pre_filled_and_the_first_one_added_is_the_master(build) -> None:  # type: ignore[no-untyped-def]
    app = build(hosts=[])
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_hosts(pilot, app)
        assert rows(screen) == []
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, HostForm))
        assert app.screen.query_one("#role", Select).value == "master"


async def test_add_edit_and_remove_a_host(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = tmp_path / "id_ed25519"
    key.write_text("not checked here, only that it exists\n")
    app = build(environ={"DVP_SUDO": "not shown anywhere"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_hosts(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, HostForm))
        assert app.screen.query_one("#role", Select).value == "worker"  # localhost is the master already
        await type_into(pilot, "#address", "192.0.2.21", keys=True)
        await type_into(pilot, "#name", "worker-1")
        await type_into(pilot, "#user", "admin")
        await type_into(pilot, "#key", str(key))
        await type_into(pilot, "#sudo", "env:DVP_SUDO")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        assert app.draft.hosts[1] == {
            "address": "192.0.2.21", "name": "worker-1", "role": "worker",
            "ssh": {"user": "admin", "privateKeyFiles": [str(key)], "sudoPassword": {"fromEnv": "DVP_SUDO"}},
        }
        assert rows(screen)[1] == ["worker-1", "192.0.2.21", "worker", "admin", str(key), "not tested"]

        await pilot.press("e")  # the new host is selected
        await wait_for(pilot, lambda: isinstance(app.screen, HostForm))
        await type_into(pilot, "#name", "worker-one")
        await type_into(pilot, "#sudo", "")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        assert app.draft.hosts[1]["name"] == "worker-one"
        assert "sudoPassword" not in app.draft.hosts[1]["ssh"]

        await pilot.press("up", "d")  # removing asks first; "n" keeps the host
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        assert "localhost" in str(app.screen.query_one("#question", Static).content)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert [r[1] for r in rows(screen)] == ["localhost", "192.0.2.21"]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)
        assert [r[1] for r in rows(screen)] == ["192.0.2.21"]
        await pilot.press("ctrl+n")  # no master left: refused, with the config's message
        await pilot.pause()
        assert "no host has role master" in str(screen.query_one("#screen-error", Static).content)
        assert isinstance(app.screen, HostsScreen)


async def test_cancel_leaves_the_hosts_unchanged(build) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_hosts(pilot, app)
        before = [dict(h) for h in app.draft.hosts]
        await pilot.press("enter")  # edit the selected row
        await wait_for(pilot, lambda: isinstance(app.screen, HostForm))
        await type_into(pilot, "#address", "192.0.2.99")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert app.draft.hosts == before


async def test_field_errors_are_shown_under_their_fields(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_hosts(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, HostForm))
        await type_into(pilot, "#address", "bad_host")
        await type_into(pilot, "#name", "Bad_Name")
        await type_into(pilot, "#key", str(tmp_path / "missing"))
        await type_into(pilot, "#password", "hunter2")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, HostForm)  # not saved
        assert error_of(app, "address") == '"bad_host" is not an IP address or host name'
        assert error_of(app, "name").startswith('"Bad_Name" is not a valid host name (RFC 1123 label')
        assert error_of(app, "password") == "expected env:VARIABLE or file:PATH (a reference, never the secret itself)"
        assert "hunter2" not in error_of(app, "password")

        await type_into(pilot, "#address", "192.0.2.30")
        await type_into(pilot, "#name", "")
        await type_into(pilot, "#password", "")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert error_of(app, "key") == f"private key file {tmp_path / 'missing'} does not exist"
        assert error_of(app, "address") == ""

        await type_into(pilot, "#key", "")
        app.screen.query_one("#role", Select).value = "master"  # a second master for target embedded
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert error_of(app, "role").startswith("target embedded runs one API server: exactly one host may be master")
        app.screen.query_one("#role", Select).value = "worker"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        assert len(app.draft.hosts) == 2


async def test_a_secret_reference_must_resolve(build) -> None:  # type: ignore[no-untyped-def]
    app = build(environ={"DVP_TEST_SET": "x"})
    async with app.run_test(size=SIZE) as pilot:
        await to_hosts(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, HostForm))
        await type_into(pilot, "#address", "192.0.2.40")
        await type_into(pilot, "#sudo", "env:DVP_TEST_UNSET")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert error_of(app, "sudo") == "environment variable DVP_TEST_UNSET is not set"
        await type_into(pilot, "#sudo", "env:DVP_TEST_SET")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))


async def test_test_connection_reaches_localhost_over_the_local_connection(build) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_hosts(pilot, app)
        await pilot.press("t")
        await wait_for(pilot, lambda: rows(screen)[0][5].startswith("ok:"))
        assert rows(screen)[0][5].startswith("ok: root via ")


async def test_test_connection_reports_the_ssh_error(build) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_hosts(pilot, app)
        app.draft.put_host(None, {"address": "127.0.0.1", "name": "closed", "role": "worker",
                                  "ssh": {"port": 1}})
        screen.refresh_table(select=1)
        await pilot.press("t")
        await wait_for(pilot, lambda: rows(screen)[1][5] not in ("not tested", "testing…"))
        assert rows(screen)[1][5].startswith("connection to 127.0.0.1:1 refused")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, PreflightScreen))
