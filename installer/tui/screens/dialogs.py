"""Small modal questions of the wizard: a yes/no confirmation (delete a host, quit with unsaved
input, restore a draft, overwrite a file) and the host-key screen that shows an unknown SSH
host key's type and fingerprint and lets the user trust it (written to the known_hosts file in
use) or reject it. Each is a `ModalScreen[bool]`: dismissed with the answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from installer.tui.hostcheck import UnknownHostKey


class Confirm(ModalScreen[bool]):
    """`question`; y / the yes button answers True, n / escape / the no button False."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No", dialog_id: str = "confirm-dialog") -> None:
        super().__init__(id=dialog_id)
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(f"{self.question}\n\ny: {self.yes}   n / escape: {self.no}", id="question")
            with Horizontal(classes="nav"):
                yield Button(self.no, id="no")
                yield Button(self.yes, id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class HostKeyScreen(ModalScreen[bool]):
    """An unknown host key: its type and SHA256 fingerprint, to compare with the host's own."""

    BINDINGS = [
        Binding("t", "answer(True)", "Trust"),
        Binding("r", "answer(False)", "Reject"),
        Binding("escape", "answer(False)", "Reject"),
    ]

    def __init__(self, key: UnknownHostKey) -> None:
        super().__init__(id="host-key")
        self.key = key

    def compose(self) -> ComposeResult:
        k = self.key
        with Vertical(classes="modal"):
            yield Static(
                f"The host {k.host} is not known yet. It offers this key:\n\n"
                f"  type         {k.key_type}\n"
                f"  fingerprint  {k.fingerprint}\n\n"
                "Compare it with the host's own (on the host: ssh-keygen -lf /etc/ssh/ssh_host_"
                f"{k.key_type.lower()}_key.pub).\nTrusting it adds it to {k.known_hosts}.\n\n"
                "t: trust   r / escape: reject",
                id="host-key-text",
            )
            with Horizontal(classes="nav"):
                yield Button("Reject", id="reject")
                yield Button("Trust", id="trust", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#reject", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "trust")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
