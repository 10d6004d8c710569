"""Step 1: what to install — the target (`embedded` or `dkp`) and the check profile
(`production` or `evaluation`). Shows why a pre-filled file could not be used, if it could not."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Label, RadioButton, RadioSet, Static

from installer.tui.base import WizardScreen

TARGETS = (
    ("embedded", "embedded — dvp's own API server, one host or a few"),
    ("dkp", "dkp — Deckhouse Kubernetes Platform, bootstrapped with dhctl"),
)
PROFILES = (
    ("production", "production — DKP's published minimums, hardware virtualization required"),
    ("evaluation", "evaluation — smaller hosts and software emulation accepted (warnings)"),
)


class WelcomeScreen(WizardScreen):
    HELP = "Install the virtualization platform. Choose the target and the check profile (arrows, space), then ctrl+n."

    def compose_body(self) -> ComposeResult:
        draft = self.draft
        if draft.load_error:
            yield Static(draft.load_error, classes="screen-error")
        elif self.wizard.config_path is not None:
            yield Static(f"Pre-filled from {self.wizard.config_path}.", classes="note")
        yield Label("Target", classes="field-label")
        with RadioSet(id="target"):
            for value, text in TARGETS:
                yield RadioButton(text, value=draft.target == value, id=f"target-{value}")
        yield Label("Check profile", classes="field-label")
        with RadioSet(id="profile"):
            for value, text in PROFILES:
                yield RadioButton(text, value=draft.profile == value, id=f"profile-{value}")

    def on_mount(self) -> None:
        self.query_one("#target", RadioSet).focus()

    def _choice(self, set_id: str) -> str | None:
        pressed = self.query_one(f"#{set_id}", RadioSet).pressed_button
        return pressed.id.split("-", 1)[1] if pressed is not None and pressed.id else None

    def action_next(self) -> None:
        target, profile = self._choice("target"), self._choice("profile")
        if target is None or profile is None:
            self.set_screen_error("choose a target and a profile")
            return
        self.draft.set_target(target)
        self.draft.set_profile(profile)
        from installer.tui.screens.hosts import HostsScreen

        self.app.push_screen(HostsScreen())

    def action_back(self) -> None:
        pass  # the first step
