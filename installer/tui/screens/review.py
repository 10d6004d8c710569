"""Step 5: the exact YAML the unattended mode takes (`dump_config` of the validated config),
saved to a path the user types (ctrl+s), then — after a confirmation modal — the install.

"Save as": with a pre-filled file (`--edit FILE`) the path offered is a new file beside it, and
the text saved is the user's own file with the edits merged in (installer/tui/roundtrip.py:
comments and number types kept); writing over an existing file asks first. Saving writes
through a temporary file and a rename, then reads the file back with `load_config`, so "saved"
means `dvp install --config FILE` accepts it. Cancelling the confirmation returns here with
nothing run.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TextArea

from installer.config.errors import ConfigInvalid
from installer.config.loader import dump_config, load_config
from installer.config.models import InstallConfig
from installer.tui.base import WizardScreen, describe_issues, field


def save_text(path: Path, text: str) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of it."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ReviewScreen(WizardScreen):
    HELP = "The config the unattended mode takes (dvp install --config FILE). ctrl+s: save  ctrl+n: install…"
    NEXT_LABEL = "Install…"
    BINDINGS = [Binding("ctrl+s", "save", "Save", priority=True)]

    def __init__(self) -> None:
        super().__init__()
        self.config: InstallConfig | None = None
        self.yaml_text = ""

    def compose_body(self) -> ComposeResult:
        yield TextArea("", id="yaml", read_only=True, show_line_numbers=True)
        source = self.wizard.config_path
        default = source.with_name(f"{source.stem}-edited{source.suffix or '.yaml'}") if source else \
            Path.cwd() / "install.yaml"
        yield field("Save as", Input(str(default), id="save-path"),
                    hint=f"edits of {source} are merged into a copy of it (comments kept)" if source else "")

    def on_mount(self) -> None:
        self.config, issues = self.draft.validate()
        if self.config is None:
            self.set_screen_error("the config is not valid yet:\n" + describe_issues(issues))
            self.yaml_text = ""
        else:
            self.yaml_text = dump_config(self.config)
        self.query_one("#yaml", TextArea).load_text(self.yaml_text)
        self.query_one("#yaml", TextArea).focus()

    def action_save(self) -> None:
        if self.config is None:
            return
        raw = self.query_one("#save-path", Input).value.strip()
        error = self.query_one("#save-path-error", Static)
        if not raw:
            error.update("type the path of the file to write")
            return
        path = Path(raw).expanduser()
        if path.is_dir():
            error.update(f"{path} is a directory; type a file name")
            return
        if path.exists() and path.resolve() != self.wizard.saved_path:
            from installer.tui.screens.dialogs import Confirm

            def decided(overwrite: bool | None) -> None:
                if overwrite:
                    self._write(path)

            self.app.push_screen(Confirm(f"{path} exists. Write over it? (Its comments are kept where the "
                                         "config did not change.)", yes="Overwrite", no="Cancel",
                                         dialog_id="confirm-overwrite"), decided)
            return
        self._write(path)

    def _text_for(self, path: Path) -> str:
        """The wizard's config; merged into the user's file when there is one to keep."""
        from installer.tui.roundtrip import merge_into

        source = self.wizard.config_path
        if source is None or not source.is_file():
            return self.yaml_text
        return merge_into(source.read_text(encoding="utf-8"), self.draft.document())

    def _write(self, path: Path) -> None:
        error = self.query_one("#save-path-error", Static)
        try:
            save_text(path, self._text_for(path))
            load_config(path, known_checks=self.draft.known_checks, environ=self.draft.environ)
        except OSError as exc:
            error.update(f"cannot write {path}: {exc.strerror or exc}")
            return
        except ConfigInvalid as exc:  # would be a bug: the text was validated before
            error.update(f"{path} was written but does not validate:\n{exc}")
            return
        error.update("")
        self.wizard.saved_path = path.resolve()
        self.wizard.pristine = copy.deepcopy(self.draft.doc)  # nothing unsaved any more
        self.notify(f"saved to {path}")
        self.query_one("#save-path-error", Static).update(f"saved: {path}")

    def action_next(self) -> None:
        config = self.config
        if config is None:
            return

        def decided(go: bool | None) -> None:
            if go:
                self.wizard.start_install(config)

        self.app.push_screen(ConfirmInstall(config), decided)


class ConfirmInstall(ModalScreen[bool]):
    """Nothing on any host changes before this is answered yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Install"),
        Binding("n", "answer(False)", "Cancel"),
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, config: InstallConfig) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        hosts = ", ".join(f"{h.display_name} ({h.role})" for h in self.config.hosts)
        with Vertical(id="confirm", classes="modal"):
            yield Static(
                f"Install target {self.config.target} on {len(self.config.hosts)} host(s): {hosts}?\n\n"
                "This installs packages, writes configuration and starts services on those hosts.\n"
                "y: install   n / escape: back to the review, nothing is changed",
                id="confirm-text",
            )
            with Horizontal(classes="nav"):
                yield Button("Cancel", id="cancel")
                yield Button("Install", id="install", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "install")

    def action_answer(self, go: bool) -> None:
        self.dismiss(go)
