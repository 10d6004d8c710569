"""Step 2: the hosts. A table of the machines (name, address, role, SSH user, key, connection
test result); `a` adds, `e`/enter edits, `d` removes (after a confirmation), `t` tests the connection of the selected
host in a worker thread; an unknown host key opens the host-key screen (type, fingerprint; trust
writes it to the known_hosts file in use, then the test runs again). No host is pre-filled. ctrl+n validates every host and the SSH settings before the preflight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from installer.tui.base import WizardScreen, describe_issues
from installer.tui.draft import host_label
from installer.tui.hostcheck import ConnectionOutcome

COLUMNS = (("name", "Name"), ("address", "Address"), ("role", "Role"), ("user", "SSH user"),
           ("key", "Key file"), ("connection", "Connection"))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class HostsScreen(WizardScreen):
    HELP = ("The machines to install on. a: add  e/enter: edit  d: remove  t: test connection  s: SSH settings  "
            "ctrl+n: preflight")
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("d", "remove", "Remove"),
        Binding("t", "test", "Test connection"),
        Binding("s", "ssh_settings", "SSH settings"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.connection: dict[str, str] = {}  # host label -> last test outcome

    def compose_body(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="hosts", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table

    def on_mount(self) -> None:
        self.refresh_table()
        self.query_one("#hosts", DataTable).focus()

    def refresh_table(self, *, select: int | None = None) -> None:
        table = self.query_one("#hosts", DataTable)
        keep = table.cursor_row if select is None else select
        table.clear()
        for i, host in enumerate(self.draft.hosts):
            if not isinstance(host, dict):
                host = {"address": str(host)}
            table.add_row(*self._cells(host), key=str(i))
        if table.row_count:
            table.move_cursor(row=max(0, min(keep, table.row_count - 1)))

    def _cells(self, host: dict[str, Any]) -> list[str]:
        ssh = _mapping(host.get("ssh"))
        local = str(host.get("address", "")).lower() == "localhost"
        keys = ssh.get("privateKeyFiles") or []
        return [
            str(host.get("name", "")),
            str(host.get("address", "")),
            str(host.get("role", "")),
            "(local)" if local and not ssh.get("user") else str(ssh.get("user", "") or "(ssh.user)"),
            str(keys[0]) if keys else "",
            self.connection.get(host_label(host), "not tested"),
        ]

    def selected(self) -> int | None:
        table = self.query_one("#hosts", DataTable)
        return table.cursor_row if table.row_count else None

    def action_add(self) -> None:
        self._open_form(None)

    def action_edit(self) -> None:
        index = self.selected()
        if index is not None:
            self._open_form(index)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def _open_form(self, index: int | None) -> None:
        from installer.tui.screens.host_form import HostForm

        def done(host: dict[str, Any] | None) -> None:
            if host is None:
                return
            if index is not None and isinstance(self.draft.hosts[index], dict):
                self.connection.pop(host_label(self.draft.hosts[index]), None)
            self.refresh_table(select=self.draft.put_host(index, host))
            self.set_screen_error("")

        self.app.push_screen(HostForm(self.draft, index), done)

    def action_remove(self) -> None:
        from installer.tui.screens.dialogs import Confirm

        index = self.selected()
        if index is None:
            return
        label = host_label(self.draft.hosts[index]) if isinstance(self.draft.hosts[index], dict) else "this host"

        def decided(yes: bool | None) -> None:
            if yes and index < len(self.draft.hosts):
                self.draft.remove_host(index)
                self.refresh_table(select=index)

        self.app.push_screen(Confirm(f"Remove the host {label} from the install?", yes="Remove", no="Keep"), decided)

    def action_ssh_settings(self) -> None:
        from installer.tui.screens.ssh_settings import SSHSettingsScreen

        def done(ssh: dict[str, Any] | None) -> None:
            if ssh is None:
                return
            self.draft.set_field(("ssh",), ssh or None)
            self.connection.clear()  # how hosts are reached changed: earlier tests say nothing
            self.refresh_table()
            self.wizard.save_draft()

        self.app.push_screen(SSHSettingsScreen(self.draft), done)

    def action_test(self) -> None:
        index = self.selected()
        if index is None:
            return
        config, issues = self.draft.validate()
        if config is None:
            self.set_screen_error("fix the config before testing connections:\n" + describe_issues(issues))
            return
        name = config.hosts[index].display_name
        self.connection[name] = "testing…"
        self.refresh_table(select=index)
        tester = self.wizard.connection_tester
        accept_new = self.wizard.accept_new_host_keys

        def work() -> None:
            outcome = tester(config, index, accept_new)
            self.wizard.from_thread(self._tested, name, outcome)

        self.run_worker(work, thread=True, group="test-connection", name=f"test {name}")

    def _tested(self, name: str, outcome: ConnectionOutcome) -> None:
        self.connection[name] = outcome.text
        self.refresh_table()
        if outcome.unknown_key is not None:
            self._ask_trust(outcome)

    def _ask_trust(self, outcome: ConnectionOutcome) -> None:
        """Show the unknown key; trusted, it goes to the known_hosts file in use and the test reruns."""
        from installer.ssh.hostkeys import KnownHosts
        from installer.tui.screens.dialogs import HostKeyScreen

        key = outcome.unknown_key
        assert key is not None
        index = self.selected()

        def decided(trust: bool | None) -> None:
            if not trust:
                self.set_screen_error(f"host key of {key.host} rejected: the install cannot connect to it")
                return
            KnownHosts(Path(key.known_hosts)).add_line(key.line)
            self.notify(f"trusted {key.key_type} {key.fingerprint} (added to {key.known_hosts})")
            if index is not None:
                self.refresh_table(select=index)
                self.action_test()

        self.app.push_screen(HostKeyScreen(key), decided)

    def action_next(self) -> None:
        if not self.draft.hosts:
            self.set_screen_error("add at least one host (a)")
            return
        issues = self.draft.issues("hosts", "ssh")
        if issues:
            self.set_screen_error(describe_issues(issues))
            return
        self.set_screen_error("")
        from installer.tui.screens.preflight import PreflightScreen

        self.app.push_screen(PreflightScreen())
