"""The wizard from welcome to review: the config it produces is exactly what the unattended
mode accepts (review text == dump_config, parse_config round trip, saved file loads), and a
config file pre-fills it."""

from __future__ import annotations

from pathlib import Path

import yaml
from textual.widgets import Input, RadioSet, TextArea

from installer.checks.catalog import check_names
from installer.config.loader import dump_config, load_config, parse_config
from installer.tui.screens.hosts import HostsScreen
from installer.tui.screens.preflight import PreflightScreen
from installer.tui.screens.review import ReviewScreen
from installer.tui.screens.settings import SettingsScreen
from installer.tui.screens.welcome import WelcomeScreen
from tests.unit.installer.tui.conftest import SIZE, wait_for


async def walk_to_review(pilot, app) -> ReviewScreen:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, PreflightScreen) and app.screen.report is not None)
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
    return app.screen  # type: ignore[return-value]


async def test_default_walk_produces_the_config_the_unattended_mode_accepts(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        review = await walk_to_review(pilot, app)
        shown = review.query_one("#yaml", TextArea).text
        assert review.config is not None
        assert shown == dump_config(review.config)
        assert parse_config(shown, known_checks=check_names(), environ={}) == review.config
        doc = yaml.safe_load(shown)
        assert doc["hosts"] == [{"address": "localhost", "role": "master"}]
        assert doc["target"] == "embedded"
        assert doc["virtualization"]["virtualMachineCIDRs"] == ["10.66.10.0/24"]

        target = tmp_path / "sub" / "install.yaml"
        path_input = review.query_one("#save-path", Input)
        path_input.value = str(target)
        await pilot.press("ctrl+s")
        await wait_for(pilot, target.exists)
        assert target.read_text() == shown
        assert load_config(target, known_checks=check_names(), environ={}) == review.config
        assert app.saved_path == target.resolve()


async def test_back_returns_to_the_previous_step_keeping_the_choices(build) -> None:  # type: ignore[no-untyped-def]
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("down", "enter")  # target: dkp
        await pilot.press("tab", "down", "enter")  # profile: evaluation
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        assert app.draft.target == "dkp" and app.draft.profile == "evaluation"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        pressed = app.screen.query_one("#target", RadioSet).pressed_button
        assert pressed is not None and pressed.id == "target-dkp"
        await pilot.press("escape")  # nothing before the welcome screen
        assert isinstance(app.screen, WelcomeScreen)


async def test_a_config_file_prefills_every_step(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "given.yaml"
    source.write_text(
        "apiVersion: dvp.deckhouse.io/v1alpha1\nkind: InstallConfig\ntarget: dkp\n"
        "hosts:\n- {address: 192.0.2.10, name: m1, role: master}\n- {address: 192.0.2.11, role: worker}\n"
        "cluster: {kubernetesVersion: '1.29', releaseChannel: EarlyAccess}\n"
        "virtualization: {virtualMachineCIDRs: [10.70.0.0/24], dvcrStorageSize: 80Gi}\n"
        "checks: {profile: evaluation, skip: [virt.iommu]}\n"
    )
    expected = load_config(source, known_checks=check_names(), environ={})
    app = build(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        assert app.screen.query_one("#target", RadioSet).pressed_button.id == "target-dkp"  # type: ignore[union-attr]
        assert app.screen.query_one("#profile", RadioSet).pressed_button.id == "profile-evaluation"  # type: ignore[union-attr]
        review = await walk_to_review(pilot, app)
        assert review.config == expected
        assert review.query_one("#save-path", Input).value == str(tmp_path / "given-edited.yaml")  # save as, beside it


async def test_an_unusable_file_starts_from_defaults_and_says_why(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "broken.yaml"
    source.write_text("hosts: [unclosed\n")
    app = build(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        assert "cannot be used to pre-fill the wizard" in app.draft.load_error
        assert app.draft.hosts == []  # the defaults pre-fill no host
