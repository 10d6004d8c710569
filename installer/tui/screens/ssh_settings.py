"""The SSH settings every host inherits (`ssh:` of the install config): user, port, private
key files, the known_hosts file host keys are checked against (and trusted keys written to),
and a bastion (jump host). Opened with `s` from the hosts screen; validated by the config's own
rules before it closes, errors under their fields."""

from __future__ import annotations

import copy
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from installer.tui.base import field
from installer.tui.draft import ConfigDraft

FIELDS = {"ssh.user": "ssh-user", "ssh.port": "ssh-port", "ssh.privateKeyFiles": "ssh-keys",
          "ssh.knownHostsFile": "ssh-known-hosts", "ssh.bastion": "ssh-bastion"}


def parse_bastion(text: str) -> dict[str, Any] | None:
    """`[user@]host[:port]` -> the config's bastion mapping; raises ValueError."""
    text = text.strip()
    if not text:
        return None
    user, _, rest = text.rpartition("@")
    host, sep, port = rest.partition(":")
    if not host or (sep and not port.isdigit()):
        raise ValueError("expected [user@]host[:port], e.g. admin@203.0.113.5:2222")
    out: dict[str, Any] = {"address": host}
    if port:
        out["port"] = int(port)
    if user:
        out["user"] = user
    return out


def format_bastion(value: Any) -> str:
    if not isinstance(value, dict) or not value.get("address"):
        return ""
    user = f"{value['user']}@" if value.get("user") else ""
    port = f":{value['port']}" if value.get("port") else ""
    return f"{user}{value['address']}{port}"


class SSHSettingsScreen(ModalScreen[dict[str, Any] | None]):
    BINDINGS = [Binding("ctrl+s", "save", "Save", priority=True), Binding("escape", "cancel", "Cancel")]

    def __init__(self, draft: ConfigDraft) -> None:
        super().__init__(id="ssh-settings")
        self.draft = draft
        ssh = draft.doc.get("ssh")
        self.ssh: dict[str, Any] = copy.deepcopy(ssh) if isinstance(ssh, dict) else {}

    def compose(self) -> ComposeResult:
        s = self.ssh
        with Vertical(classes="modal"):
            yield Static("SSH settings of every host (a host's own ssh: overrides them) — ctrl+s saves, "
                         "escape cancels", classes="help-line")
            with VerticalScroll():
                yield field("User (sudo is used when not root)", Input(str(s.get("user", "")), id="ssh-user",
                                                                       placeholder="root"))
                yield field("Port", Input(str(s.get("port", "")), id="ssh-port", placeholder="22"))
                yield field("Private key files (comma-separated)",
                            Input(", ".join(str(k) for k in s.get("privateKeyFiles") or []), id="ssh-keys",
                                  placeholder="~/.ssh/id_ed25519"))
                yield field("known_hosts file (trusted host keys are written here)",
                            Input(str(s.get("knownHostsFile", "")), id="ssh-known-hosts",
                                  placeholder="~/.ssh/known_hosts"))
                yield field("Bastion (jump host)", Input(format_bastion(s.get("bastion")), id="ssh-bastion",
                                                         placeholder="[user@]host[:port]"))
            yield Static("", id="ssh-error", classes="screen-error")
            with Horizontal(classes="nav"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#ssh-user", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        ssh = {k: v for k, v in self.ssh.items() if k not in ("user", "port", "privateKeyFiles", "knownHostsFile",
                                                                  "bastion")}
        errors: dict[str, str] = {}
        if self._value("ssh-user"):
            ssh["user"] = self._value("ssh-user")
        port = self._value("ssh-port")
        if port:
            ssh["port"] = int(port) if port.isdigit() else port  # a bad port is the config's to describe
        keys = [k.strip() for k in self._value("ssh-keys").split(",") if k.strip()]
        if keys:
            ssh["privateKeyFiles"] = keys
        if self._value("ssh-known-hosts"):
            ssh["knownHostsFile"] = self._value("ssh-known-hosts")
        try:
            bastion = parse_bastion(self._value("ssh-bastion"))
        except ValueError as exc:
            errors["ssh-bastion"] = str(exc)
            bastion = None
        if bastion is not None:
            old = self.ssh.get("bastion")
            ssh["bastion"] = {**{k: v for k, v in (old or {}).items() if k not in ("address", "port", "user")},
                              **bastion}
        return ssh, errors

    def action_save(self) -> None:
        ssh, errors = self.collect()
        trial = ConfigDraft(copy.deepcopy(self.draft.doc), filename=self.draft.filename,
                            known_checks=self.draft.known_checks, environ=self.draft.environ)
        trial.set_field(("ssh",), ssh or None)
        messages: dict[str, list[str]] = {k: [v] for k, v in errors.items()}
        general: list[str] = []
        for issue in trial.issues("ssh"):
            target = next((FIELDS[k] for k in sorted(FIELDS, key=len, reverse=True)
                           if issue.path == k or issue.path.startswith((k + ".", k + "["))), None)
            if target is None:
                general.append(f"{issue.path}: {issue.message}")
            else:
                messages.setdefault(target, []).append(issue.message)
        for widget in self.query(".field-error"):
            widget.update("")  # type: ignore[attr-defined]
        for widget_id, texts in messages.items():
            self.query_one(f"#{widget_id}-error", Static).update("\n".join(texts))
        self.query_one("#ssh-error", Static).update("\n".join(general))
        if not messages and not general:
            self.dismiss(ssh)
