"""The install wizard as a Textual app: holds the config draft and the services the screens
use (preflight, connection test, install runner — injectable, so Pilot tests drive every
screen with fakes while `dvp install` passes the real ones), and moves from the review to the
progress and done screens.

Threads: the preflight, connection tests and the install run in Textual thread workers; they
report back through `from_thread` (`App.call_from_thread`), never touching widgets directly.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding

from installer.checks.model import PreflightReport
from installer.checks.runner import PreflightListener
from installer.config.models import InstallConfig
from installer.install.events import EventSink, InstallEvent, InstallResult
from installer.tui.draft import ConfigDraft
from installer.tui.draftfile import DRAFT_NAME, DraftFile
from installer.tui.hostcheck import ConnectionTester, try_connection

if TYPE_CHECKING:
    from installer.install.engine import InstallOptions

log = logging.getLogger("dvp.tui")

EXIT_INSTALLED, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130

Runner = Callable[[InstallConfig, "InstallOptions | None", EventSink], InstallResult]
Preflight = Callable[[InstallConfig, PreflightListener], PreflightReport]


def default_options() -> InstallOptions | None:
    """Default install options; None while the phase engine is not installed alongside (the
    wizard works up to the review without it, and the install step then says it is missing)."""
    try:
        from installer.install.engine import InstallOptions
    except ImportError:
        return None
    return InstallOptions()


class InstallApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "dvp install"
    BINDINGS = [Binding("ctrl+q", "quit_wizard", "Quit", priority=True)]

    def __init__(
        self,
        draft: ConfigDraft,
        options: InstallOptions | None,
        *,
        config_path: Path | None = None,
        runner: Runner | None = None,
        preflight: Preflight | None = None,
        connection_tester: ConnectionTester | None = None,
        draft_file: DraftFile | None = None,
    ) -> None:
        super().__init__()
        self.draft = draft
        self.draft_file = draft_file
        self.pristine = copy.deepcopy(draft.doc)
        """The document as started or last saved to a config file: "unsaved input" differs from it."""
        self._drafted = copy.deepcopy(draft.doc)  # what the draft file holds
        self.options = options
        self.config_path = config_path
        self.saved_path: Path | None = None
        self.runner: Runner = runner or self._engine_runner
        self.preflight: Preflight = preflight or self._real_preflight
        self.connection_tester: ConnectionTester = connection_tester or try_connection
        self.installing = False
        self.draft_saved = False
        self.result: InstallResult | None = None

    @property
    def accept_new_host_keys(self) -> bool:
        return bool(getattr(self.options, "accept_new_host_keys", False))

    def on_mount(self) -> None:
        from installer.tui.screens.dialogs import Confirm
        from installer.tui.screens.welcome import WelcomeScreen

        saved = self.draft_file.load() if self.draft_file is not None and self.config_path is None else None
        if saved is None or saved == self.draft.doc:
            self.push_screen(WelcomeScreen())
            return
        draft_file = self.draft_file
        assert draft_file is not None
        hosts = ", ".join(str(h.get("address", "?")) for h in saved.get("hosts") or [] if isinstance(h, dict))

        def decided(restore: bool | None) -> None:
            if restore:
                self.draft.doc = saved
                self._drafted = copy.deepcopy(saved)
            else:
                draft_file.discard()
            self.push_screen(WelcomeScreen())

        self.push_screen(Confirm(f"Restore the draft saved {draft_file.saved_at()} in {draft_file.path}"
                                 f"{' (hosts: ' + hosts + ')' if hosts else ''}?", yes="Restore", no="Start afresh",
                                 dialog_id="restore-draft"), decided)

    def save_draft(self) -> None:
        """Called at every step: the document so far, for the next start to offer."""
        if self.draft_file is None or self.draft.doc == self._drafted:
            return
        try:
            self.draft_file.save(self.draft.doc)
        except OSError as exc:
            log.warning("cannot save the draft to %s: %s", self.draft_file.path, exc)
            return
        self._drafted = copy.deepcopy(self.draft.doc)
        self.draft_saved = True

    @property
    def unsaved(self) -> bool:
        return self.draft.doc != self.pristine

    def from_thread(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` on the UI thread; dropped once the app has exited."""
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(callback, *args)

    def action_quit_wizard(self) -> None:
        from installer.tui.screens.dialogs import Confirm

        if isinstance(self.screen, Confirm):
            return
        if self.installing:
            self.notify("the install is running; it stops at the end of the current phase only when "
                        "killed — wait for it (an interrupted run continues with dvp install --resume)",
                        severity="warning")
            return
        if self.result is not None:
            code = EXIT_INSTALLED if self.result.ok else EXIT_FAILED
        else:
            code = EXIT_CANCELLED
        if self.result is None and self.unsaved:
            where = f" as a draft in {self.draft_file.path}" if self.draft_file is not None else ""

            def decided(quit_: bool | None) -> None:
                if quit_:
                    self.save_draft()
                    self.exit(code, return_code=code)

            self.push_screen(Confirm(f"Quit the installer? What you typed is kept{where} and offered next time.",
                                     yes="Quit", no="Stay", dialog_id="confirm-quit"), decided)
            return
        self.exit(code, return_code=code)

    # --- the real services ------------------------------------------------------------------

    def _real_preflight(self, config: InstallConfig, listener: PreflightListener) -> PreflightReport:
        from installer.checks.runner import run_preflight

        return run_preflight(
            config,
            skip=tuple(getattr(self.options, "skip_checks", ())),
            accept_new_host_keys=self.accept_new_host_keys,
            listener=listener,
        ).report

    def _engine_runner(self, config: InstallConfig, options: InstallOptions | None, sink: EventSink) -> InstallResult:
        from installer.install.engine import InstallOptions, run_install

        result: InstallResult = run_install(
            config, options or InstallOptions(), sink, config_path=self.saved_path or self.config_path
        )
        return result

    # --- install ----------------------------------------------------------------------------

    def start_install(self, config: InstallConfig) -> None:
        """Called once the confirmation modal said yes: progress screen + runner thread."""
        from installer.tui.screens.progress import ProgressScreen

        hosts = len(config.hosts)
        runner, options = self.runner, self.options

        def sink(event: InstallEvent) -> None:
            try:
                self.from_thread(screen.show_event, event)
            except Exception:  # drawing must never break the install itself
                log.exception("cannot show install event %r", event)

        def work() -> None:
            try:
                result = runner(config, options, sink)
            except Exception as exc:  # the done screen says what happened, the app stays up
                log.exception("the install runner failed")
                failed = next((p for p, s in screen.phase_status.items() if s == "running"), None)
                result = InstallResult(
                    ok=False,
                    run_dir=Path(getattr(options, "state_dir", None) or "."),
                    failed_phase=failed,  # type: ignore[arg-type]
                    message=f"the installer stopped: {type(exc).__name__}: {exc}",
                )
            self.from_thread(self.finish_install, result)

        def ready() -> None:  # the screen's tables exist: events can be drawn
            self.run_worker(work, thread=True, group="install", name="install")

        screen = ProgressScreen(
            f"Installing target {config.target} on {hosts} host{'s' if hosts != 1 else ''}", on_ready=ready
        )
        self.installing = True
        self.push_screen(screen)

    def finish_install(self, result: InstallResult) -> None:
        from installer.tui.screens.done import DoneScreen

        self.installing = False
        self.result = result
        if result.ok and self.draft_file is not None:
            self.draft_file.discard()
        self.switch_screen(DoneScreen(result, state_dir=getattr(self.options, "state_dir", None)))


def make_app(
    config_path: Path | None,
    options: InstallOptions | None,
    *,
    runner: Runner | None = None,
    preflight: Preflight | None = None,
    connection_tester: ConnectionTester | None = None,
    environ: Mapping[str, str] | None = None,
    draft_path: Path | None = None,
) -> InstallApp:
    """The app `run_tui` runs and the Pilot tests drive. The draft lives at `draft_path`, by
    default in the state directory of `options` (no draft file when neither is given)."""
    from installer.checks.catalog import check_names

    known = check_names()
    if config_path is not None:
        draft = ConfigDraft.from_file(config_path, known_checks=known, environ=environ)
    else:
        draft = ConfigDraft(known_checks=known, environ=environ)
    if draft_path is None and options is not None:
        from installer.install.rundir import default_state_dir

        draft_path = (options.state_dir or default_state_dir()).expanduser() / DRAFT_NAME
    return InstallApp(draft, options, config_path=config_path, runner=runner, preflight=preflight,
                      connection_tester=connection_tester,
                      draft_file=DraftFile(draft_path) if draft_path is not None else None)


def run_tui(config_path: Path | None, options: InstallOptions | None) -> int:
    """`dvp install` on a terminal: the wizard; returns the exit status (0 installed, 1 the
    install failed, 130 left before installing)."""
    code = make_app(config_path, options).run()
    return code if isinstance(code, int) else EXIT_CANCELLED
