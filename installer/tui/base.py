"""What every wizard screen shares: the header, a help line saying what the screen is for, the
body, an error line, Back/Next buttons for the mouse, and a footer listing the bindings
(`ctrl+n` next, `escape` back — the same keys on every screen).

Also the small helpers for inline field errors: a `field()` block is a label, an input and an
error line below it, filled from `ConfigIssue` messages by field path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Label, Static

from installer.config.errors import ConfigIssue

if TYPE_CHECKING:
    from installer.tui.app import InstallApp
    from installer.tui.draft import ConfigDraft


def field(label: str, widget: Widget, *, hint: str = "") -> Vertical:
    """A labelled input with an error line (`#<id>-error`) under it."""
    children: list[Widget] = [Label(label, classes="field-label"), widget]
    if hint:
        children.append(Static(hint, classes="field-hint"))
    children.append(Static("", id=f"{widget.id}-error", classes="field-error"))
    return Vertical(*children, classes="field")


class WizardScreen(Screen[None]):
    """A step of the wizard; subclasses give `HELP`, `compose_body()` and `action_next()`."""

    HELP = ""
    NEXT_LABEL = "Next"
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("escape", "back", "Back"),
    ]

    @property
    def wizard(self) -> InstallApp:
        from installer.tui.app import InstallApp

        return cast(InstallApp, self.app)

    @property
    def draft(self) -> ConfigDraft:
        return self.wizard.draft

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.HELP, classes="help-line")
        with VerticalScroll(classes="body"):
            yield from self.compose_body()
        yield Static("", id="screen-error", classes="screen-error")
        with Horizontal(classes="nav"):
            yield Button("Back", id="back")
            yield Button(self.NEXT_LABEL, id="next", variant="primary")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_suspend(self) -> None:
        self.wizard.save_draft()  # a step was taken (or a form opened on top): keep what is typed

    def on_screen_resume(self) -> None:
        self.wizard.save_draft()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()
        elif event.button.id == "back":
            event.stop()
            self.action_back()

    def action_next(self) -> None:
        raise NotImplementedError

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:  # the app's default screen stays below the first step
            self.app.pop_screen()

    # --- errors -----------------------------------------------------------------------------

    def set_screen_error(self, text: str) -> None:
        self.query_one("#screen-error", Static).update(text)

    def clear_field_errors(self) -> None:
        for widget in self.query(".field-error"):
            cast(Static, widget).update("")

    def show_issues(self, issues: Iterable[ConfigIssue], fields: dict[str, str], *, prefix: str = "") -> list[ConfigIssue]:
        """Put each issue under its field (`fields`: path below `prefix` -> input id); returns
        the issues no field took, which the caller shows on the screen's error line."""
        self.clear_field_errors()
        rest: list[ConfigIssue] = []
        shown: dict[str, list[str]] = {}
        for issue in issues:
            path = issue.path[len(prefix):] if prefix and issue.path.startswith(prefix) else issue.path
            target = _field_for(path, fields)
            if target is None:
                rest.append(issue)
            else:
                shown.setdefault(target, []).append(issue.message)
        for target, messages in shown.items():
            self.query_one(f"#{target}-error", Static).update("\n".join(messages))
        return rest


def _field_for(path: str, fields: dict[str, str]) -> str | None:
    for key in sorted(fields, key=len, reverse=True):
        if path == key or path.startswith(key + ".") or path.startswith(key + "["):
            return fields[key]
    return None


def describe_issues(issues: Iterable[ConfigIssue]) -> str:
    return "\n".join(f"{i.path}: {i.message}" if i.path else i.message for i in issues)
