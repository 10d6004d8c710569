"""The form that adds or edits one host: address, name, role, SSH user, key file, and the
references (never the values) of the SSH and sudo passwords.

Saving validates the host inside a copy of the whole config with `parse_config`, so the
messages under each field are the ones `dvp config validate` prints (pydantic's through
`describe_pydantic_error`, and the cross-field rules: duplicate names, one master for
`embedded`, a key file that exists). The modal returns the host mapping, or None on cancel.
"""

from __future__ import annotations

import copy
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from installer.tui.base import field
from installer.tui.draft import ConfigDraft, format_secret_ref, parse_secret_ref

# field path below hosts[i] -> input id
FIELDS = {
    ".address": "address",
    ".name": "name",
    ".role": "role",
    ".ssh.user": "user",
    ".ssh.privateKeyFiles": "key",
    ".ssh.password": "password",
    ".ssh.sudoPassword": "sudo",
    ".ssh": "user",
}
SECRET_HINT = "a reference, not the secret: env:VARIABLE or file:PATH (blank: none)"


class HostForm(ModalScreen[dict[str, Any] | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save host", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, draft: ConfigDraft, index: int | None) -> None:
        super().__init__()
        self.draft = draft
        self.index = index
        self.host: dict[str, Any] = copy.deepcopy(draft.hosts[index]) if index is not None else {}

    def compose(self) -> ComposeResult:
        h = self.host
        ssh: dict[str, Any] = h["ssh"] if isinstance(h.get("ssh"), dict) else {}
        keys = ssh.get("privateKeyFiles") or []
        role = h.get("role") if h.get("role") in ("master", "worker") else self._default_role()
        title = "Edit host" if self.index is not None else "Add host"
        with Vertical(id="host-form", classes="modal"):
            yield Static(f"{title} — tab moves between fields, ctrl+s saves, escape cancels", classes="help-line")
            with VerticalScroll():
                yield field("Address (IP or host name; localhost = this machine, no SSH)",
                            Input(str(h.get("address", "")), id="address", placeholder="192.168.10.11"))
                yield field("Name (optional, RFC 1123 label)", Input(str(h.get("name", "")), id="name"))
                yield field("Role", Select([("master", "master"), ("worker", "worker")], value=role,
                                           allow_blank=False, id="role"))
                yield field("SSH user (blank: ssh.user, root by default)",
                            Input(str(ssh.get("user", "")), id="user"))
                yield field("SSH private key file (blank: agent, then ~/.ssh/id_*)",
                            Input(str(keys[0]) if keys else "", id="key"))
                yield field("SSH password", Input(format_secret_ref(ssh.get("password")), id="password"),
                            hint=SECRET_HINT)
                yield field("sudo password", Input(format_secret_ref(ssh.get("sudoPassword")), id="sudo"),
                            hint=SECRET_HINT)
            yield Static("", id="form-error", classes="screen-error")
            with Horizontal(classes="nav"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def _default_role(self) -> str:
        has_master = any(
            isinstance(x, dict) and x.get("role") == "master"
            for i, x in enumerate(self.draft.hosts) if i != self.index
        )
        return "worker" if has_master else "master"

    def on_mount(self) -> None:
        self.query_one("#address", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The host mapping from the inputs, and errors found before validation (bad references)."""
        errors: dict[str, str] = {}
        host = {k: v for k, v in self.host.items() if k not in ("address", "name", "role", "ssh")}
        host["address"] = self._value("address")
        if self._value("name"):
            host["name"] = self._value("name")
        host["role"] = self.query_one("#role", Select).value
        old_ssh = self.host.get("ssh")
        ssh: dict[str, Any] = dict(old_ssh) if isinstance(old_ssh, dict) else {}
        for key, widget_id in (("user", "user"), ("privateKeyFiles", "key")):
            ssh.pop(key, None)
            if self._value(widget_id):
                ssh[key] = self._value(widget_id) if key == "user" else [self._value(widget_id)]
        for key, widget_id in (("password", "password"), ("sudoPassword", "sudo")):
            ssh.pop(key, None)
            try:
                ref = parse_secret_ref(self._value(widget_id))
            except ValueError as exc:
                errors[widget_id] = str(exc)
                continue
            if ref is not None:
                ssh[key] = ref
        if ssh:
            host["ssh"] = ssh
        return host, errors

    def action_save(self) -> None:
        host, errors = self.collect()
        trial = ConfigDraft(copy.deepcopy(self.draft.doc), filename=self.draft.filename,
                            known_checks=self.draft.known_checks, environ=self.draft.environ)
        index = trial.put_host(self.index, host)
        prefix = f"hosts[{index}]"
        issues = trial.issues(prefix)
        for widget in self.query(".field-error"):
            widget.update("")  # type: ignore[attr-defined]
        messages: dict[str, list[str]] = {k: [v] for k, v in errors.items()}
        general: list[str] = []
        for issue in issues:
            rest = issue.path[len(prefix):]
            target = next((FIELDS[k] for k in sorted(FIELDS, key=len, reverse=True)
                           if rest == k or rest.startswith(k + ".") or rest.startswith(k + "[")), None)
            if target is None:
                general.append(f"{issue.path}: {issue.message}" if issue.path else issue.message)
            else:
                messages.setdefault(target, []).append(issue.message)
        for widget_id, texts in messages.items():
            self.query_one(f"#{widget_id}-error", Static).update("\n".join(texts))
        self.query_one("#form-error", Static).update("\n".join(general))
        if messages or general:
            return
        self.dismiss(host)
