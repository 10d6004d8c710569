"""The wizard never traps the user nor loses their input: an unknown host key is shown (type,
fingerprint) and, trusted, written to the known_hosts file in use so the connection test
passes; Ctrl+Q with input asks, keeps a draft and the next start offers it; "Save as" keeps
the user's comments and `10` stays an integer."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from installer.config.models import InstallConfig
from installer.tui.hostcheck import ConnectionOutcome, UnknownHostKey
from installer.tui.screens.dialogs import Confirm, HostKeyScreen
from installer.tui.screens.host_form import HostForm
from installer.tui.screens.hosts import HostsScreen
from installer.tui.screens.welcome import WelcomeScreen
from tests.unit.installer.tui.conftest import SIZE, type_into, wait_for
from tests.unit.installer.tui.test_wizard_flow import walk_to_review

KEY_LINE = "192.0.2.30 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDVwdGVzdGtleWZvcnRoZXR1aWhvc3RrZXlzY3JlZW4"


class KnownHostsTester:
    """Like try_connection: refuses a host whose key is not in the known_hosts file in use."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts
        self.calls = 0

    def __call__(self, config: InstallConfig, index: int, accept_new: bool) -> ConnectionOutcome:
        self.calls += 1
        assert config.ssh.known_hosts_file == self.known_hosts
        if self.known_hosts.is_file() and KEY_LINE in self.known_hosts.read_text():
            return ConnectionOutcome(True, "ok: root via ssh")
        key = UnknownHostKey("192.0.2.30", "ED25519", "SHA256:q3Zt0d9Yw2oV1m1Yb0c4Q0kE5w2Z1p8yK3vGg7u2XkM",
                             str(self.known_hosts), KEY_LINE)
        return ConnectionOutcome(False, "unknown host key", key)


async def test_unknown_host_key_trust_then_the_connection_test_passes(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    known = tmp_path / "ssh" / "known_hosts"
    tester = KnownHostsTester(known)
    app = build(hosts=[{"address": "192.0.2.30", "role": "master", "ssh": {"user": "root"}}],
                connection_tester=tester)
    app.draft.doc["ssh"] = {"knownHostsFile": str(known)}
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        hosts = app.screen
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        text = str(app.screen.query_one("#host-key-text", Static).content)
        assert "ED25519" in text and "SHA256:q3Zt0d9Yw2oV1m1Yb0c4Q0kE5w2Z1p8yK3vGg7u2XkM" in text
        assert str(known) in text
        await pilot.press("t")  # trust
        await wait_for(pilot, lambda: app.screen is hosts and tester.calls == 2)
        await wait_for(pilot, lambda: hosts.connection.get("192.0.2.30") == "ok: root via ssh")
        assert known.read_text() == KEY_LINE + "\n"


async def test_rejecting_a_host_key_writes_nothing(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    known = tmp_path / "known_hosts"
    tester = KnownHostsTester(known)
    app = build(hosts=[{"address": "192.0.2.30", "role": "master", "ssh": {"user": "root"}}],
                connection_tester=tester)
    app.draft.doc["ssh"] = {"knownHostsFile": str(known)}
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        assert "rejected" in str(app.screen.query_one("#screen-error", Static).content)
        assert not known.exists() and tester.calls == 1


async def test_quit_with_input_asks_and_the_next_start_restores_the_draft(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    draft = tmp_path / "state" / "wizard-draft.yaml"
    app = build(hosts=[], draft_path=draft)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, HostForm))
        await type_into(pilot, "#address", "192.0.2.40")
        await type_into(pilot, "#user", "admin")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        assert str(draft) in str(app.screen.query_one("#question", Static).content)
        await pilot.press("n")  # stay: nothing lost, still here
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 130
    assert draft.is_file() and (draft.stat().st_mode & 0o777) == 0o600

    again = build(hosts=[], draft_path=draft)
    async with again.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(again.screen, Confirm))
        assert "192.0.2.40" in str(again.screen.query_one("#question", Static).content)
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(again.screen, WelcomeScreen))
        assert [h["address"] for h in again.draft.hosts] == ["192.0.2.40"]
        assert again.draft.hosts[0]["ssh"]["user"] == "admin"


async def test_quit_without_input_leaves_at_once(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = build(hosts=[], draft_path=tmp_path / "draft.yaml")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running)
    assert not (tmp_path / "draft.yaml").exists()


SOURCE = """\
# Our lab install: keep these notes.
apiVersion: dvp.deckhouse.io/v1alpha1
kind: InstallConfig
ssh:
  user: root
  connectTimeoutSeconds: 10   # slow BMC network
hosts:
  - address: localhost
    role: master
virtualization:
  virtualMachineCIDRs: [10.70.0.0/24]
"""


async def test_save_as_keeps_comments_and_integers(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "install.yaml"
    source.write_text(SOURCE)
    app = build(source)
    async with app.run_test(size=SIZE) as pilot:
        review = await walk_to_review(pilot, app)
        target = tmp_path / "install-edited.yaml"
        assert review.query_one("#save-path", Input).value == str(target)
        await pilot.press("ctrl+s")
        await wait_for(pilot, target.exists)
        text = target.read_text()
        assert "# Our lab install: keep these notes." in text
        assert "connectTimeoutSeconds: 10   # slow BMC network" in text
        assert "10.0" not in text
        assert source.read_text() == SOURCE  # the original is untouched

        review.query_one("#save-path", Input).value = str(source)  # over the original: asks first
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is review)
        assert "connectTimeoutSeconds: 10   # slow BMC network" in source.read_text()


async def test_ssh_settings_screen_sets_what_every_host_inherits(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from installer.tui.screens.ssh_settings import SSHSettingsScreen

    key = tmp_path / "id_ed25519"
    key.write_text("k\n")
    app = build(hosts=[{"address": "192.0.2.30", "role": "master"}])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SSHSettingsScreen))
        await type_into(pilot, "#ssh-user", "admin")
        await type_into(pilot, "#ssh-port", "99999")
        await type_into(pilot, "#ssh-keys", str(key))
        await type_into(pilot, "#ssh-known-hosts", str(tmp_path / "kh"))
        await type_into(pilot, "#ssh-bastion", "jump@203.0.113.5:2222")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SSHSettingsScreen)  # the bad port is named under its field
        assert "65535" in str(app.screen.query_one("#ssh-port-error", Static).content)
        await type_into(pilot, "#ssh-port", "2200")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
    config = app.draft.build()
    assert config.ssh.user == "admin" and config.ssh.port == 2200
    assert config.ssh.private_key_files == [key] and config.ssh.known_hosts_file == tmp_path / "kh"
    assert config.ssh.bastion is not None and config.ssh.bastion.address == "203.0.113.5"
    assert config.ssh.bastion.port == 2222 and config.ssh.bastion.user == "jump"
