"""Settings (the extra fields of target dkp, errors under their fields), and the review's
confirmation modal: cancelling returns to the review with nothing run."""

from __future__ import annotations

import yaml
from textual.widgets import DataTable, Select, Static, TextArea

from installer.tui.screens.hosts import HostsScreen
from installer.tui.screens.preflight import PreflightScreen
from installer.tui.screens.review import ConfirmInstall, ReviewScreen
from installer.tui.screens.settings import SettingsScreen
from installer.tui.screens.welcome import WelcomeScreen
from tests.unit.installer.tui.conftest import SIZE, type_into, wait_for


async def to_settings(pilot, app, *, dkp: bool = False) -> SettingsScreen:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
    if dkp:
        await pilot.press("down", "enter")
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, PreflightScreen) and app.screen.report is not None)
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
    return app.screen  # type: ignore[return-value]


def error_of(screen: SettingsScreen, widget_id: str) -> str:
    return str(screen.query_one(f"#{widget_id}-error", Static).render())


async def test_embedded_hides_the_dkp_fields_and_writes_none_of_them(build) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_settings(pilot, app)
        assert not screen.query_one("#dkp-settings").display
        await type_into(pilot, "#vm-cidrs", "10.80.0.0/24, 10.81.0.0/24")
        await type_into(pilot, "#dvcr-size", "120Gi")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        doc = yaml.safe_load(app.screen.query_one("#yaml", TextArea).text)
        assert doc["virtualization"]["virtualMachineCIDRs"] == ["10.80.0.0/24", "10.81.0.0/24"]
        assert doc["virtualization"]["dvcrStorageSize"] == "120Gi"
        assert not {"kubernetesVersion", "releaseChannel", "registry"} & set(doc.get("cluster", {}))


async def test_dkp_shows_version_channel_and_registry(build) -> None:  # type: ignore[no-untyped-def]
    app = build(environ={"DVP_REGISTRY_PASSWORD": "s3cret"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_settings(pilot, app, dkp=True)
        assert screen.query_one("#dkp-settings").display
        await type_into(pilot, "#kube-version", "1.29")
        screen.query_one("#channel", Select).value = "EarlyAccess"
        await type_into(pilot, "#registry", "registry.deckhouse.io/deckhouse/ce")
        await type_into(pilot, "#registry-user", "license-token")
        await type_into(pilot, "#registry-password", "env:DVP_REGISTRY_PASSWORD")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        text = app.screen.query_one("#yaml", TextArea).text
        assert "s3cret" not in text
        cluster = yaml.safe_load(text)["cluster"]
        assert cluster["kubernetesVersion"] == "1.29"  # a string, as DKP wants it
        assert cluster["releaseChannel"] == "EarlyAccess"
        assert cluster["registry"] == {"address": "registry.deckhouse.io/deckhouse/ce", "username": "license-token",
                                       "password": {"fromEnv": "DVP_REGISTRY_PASSWORD"}}


async def test_errors_are_shown_under_their_fields(build) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_settings(pilot, app, dkp=True)
        await type_into(pilot, "#vm-cidrs", "10.66.10.1/24")
        await type_into(pilot, "#dvcr-size", "lots")
        await type_into(pilot, "#vm-dir", "relative/dir")
        await type_into(pilot, "#kube-version", "1.29.3")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen is screen
        assert error_of(screen, "vm-cidrs") == '"10.66.10.1/24" has host bits set; did you mean 10.66.10.0/24?'
        assert error_of(screen, "dvcr-size") == '"lots" is not a size such as 50Gi or 500Mi'
        assert error_of(screen, "vm-dir") == '"relative/dir" is not an absolute path'
        assert error_of(screen, "kube-version") == '"1.29.3" is not a Kubernetes version such as "1.29" (quoted) or Automatic'

        await type_into(pilot, "#vm-cidrs", "10.111.0.0/24")  # inside the pod network
        await type_into(pilot, "#dvcr-size", "50Gi")
        await type_into(pilot, "#vm-dir", "/srv/vms")
        await type_into(pilot, "#kube-version", "Automatic")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error_of(screen, "vm-cidrs") == "10.111.0.0/24 overlaps cluster.podSubnetCIDR (10.111.0.0/16)"
        assert error_of(screen, "dvcr-size") == ""
        await type_into(pilot, "#vm-cidrs", "")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error_of(screen, "vm-cidrs") == "needs at least 1 item"


async def test_confirmation_cancel_returns_to_the_review_with_nothing_run(build, runner) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        await to_settings(pilot, app)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        review = app.screen
        for cancel in ("n", "escape", "enter"):  # enter: the focused button is Cancel
            await pilot.press("ctrl+n")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmInstall))
            assert "Install target embedded on 1 host(s): localhost (master)?" in str(
                app.screen.query_one("#confirm-text", Static).render())
            await pilot.press(cancel)
            await wait_for(pilot, lambda: app.screen is review)
        await pilot.pause(0.2)
        assert runner.calls == []
        assert not app.installing
        assert not [w for w in app.workers if w.group == "install"]


THREE_HOSTS = [{"address": "192.0.2.10", "name": "m", "role": "master"},
               {"address": "192.0.2.11", "name": "w0", "role": "worker"},
               {"address": "192.0.2.12", "name": "w1", "role": "worker"}]


async def test_every_host_is_shown_with_its_role(build) -> None:  # type: ignore[no-untyped-def]
    app = build(hosts=THREE_HOSTS)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        table = app.screen.query_one("#hosts", DataTable)
        shown = [[str(c) for c in table.get_row_at(i)][:3] for i in range(table.row_count)]
        assert shown == [[h["name"], h["address"], h["role"]] for h in THREE_HOSTS]
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, PreflightScreen) and app.screen.report is not None)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmInstall))
        assert "Install target embedded on 3 host(s): m (master), w0 (worker), w1 (worker)?" in str(
            app.screen.query_one("#confirm-text", Static).render())
        await pilot.press("n")
