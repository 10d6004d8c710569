"""Step 3: the preflight checks, live. Every host is checked in a worker thread by
`installer.checks.runner.run_preflight`; its `PreflightListener` callbacks are posted to this
screen with `call_from_thread`, so rows appear per host and check as results come in. The
selected row shows what was observed, what was expected and how to fix it. `r` re-runs, `s`
skips the selected check by name (written to `checks.skip`, as the unattended mode would).

Going on is refused while a check failed with severity error, as `dvp install` refuses.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from installer.checks.model import CheckResult, HostReport, PreflightReport
from installer.tui.base import WizardScreen, describe_issues

STYLES = {"passed": "green", "error": "bold red", "warning": "yellow", "blocked": "magenta", "skipped": "dim"}


class ScreenListener:
    """A `PreflightListener` that forwards every callback to the screen on the UI thread."""

    def __init__(self, screen: PreflightScreen, run_id: int) -> None:
        self.screen = screen
        self.run_id = run_id

    def _post(self, method: str, *args: object) -> None:
        self.screen.wizard.from_thread(getattr(self.screen, method), self.run_id, *args)

    def host_started(self, host: str, total: int) -> None:
        self._post("host_started", host, total)

    def host_phase(self, host: str, phase: str) -> None:
        self._post("host_phase", host, phase)

    def check_finished(self, host: str, result: CheckResult) -> None:
        self._post("check_finished", host, result)

    def host_finished(self, report: HostReport) -> None:
        self._post("host_finished", report)


class PreflightScreen(WizardScreen):
    HELP = "Preflight checks on every host. ↑/↓: select a check to see observed/expected/fix  r: re-run  s: skip the selected check"
    BINDINGS = [
        Binding("r", "rerun", "Re-run"),
        Binding("s", "skip", "Skip check"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, CheckResult] = {}
        self.host_status: dict[str, str] = {}
        self.report: PreflightReport | None = None
        self.run_id = 0
        self.running = False
        self.config_invalid = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="host-status")
        table: DataTable[str | Text] = DataTable(id="checks", cursor_type="row", zebra_stripes=True)
        for key, label in (("host", "Host"), ("check", "Check"), ("verdict", "Verdict"), ("message", "Message")):
            table.add_column(label, key=key)
        yield table
        yield Static("", id="detail", classes="detail")

    def on_mount(self) -> None:
        self.query_one("#checks", DataTable).focus()
        self.start()

    def on_screen_resume(self) -> None:
        if self.config_invalid and not self.running:
            self.start()  # back from the settings: the config may be complete now

    def start(self) -> None:
        config, issues = self.draft.validate()
        self.config_invalid = config is None
        if config is None:  # e.g. settings pre-filled from a file: fixed on a later step
            self.set_screen_error(
                "the preflight needs a valid config; fix these first (ctrl+n goes on to the settings, "
                "escape here again to run the preflight):\n" + describe_issues(issues)
            )
            return
        self.run_id += 1
        self.running = True
        self.report = None
        self.results.clear()
        self.host_status = {h.display_name: "waiting" for h in config.hosts}
        self.query_one("#checks", DataTable).clear()
        self.query_one("#detail", Static).update("")
        self.set_screen_error("")
        self._show_status()
        listener = ScreenListener(self, self.run_id)
        preflight, run_id = self.wizard.preflight, self.run_id

        def work() -> None:
            try:
                report = preflight(config, listener)
            except Exception as exc:  # shown, not raised: the wizard stays usable
                self.wizard.from_thread(self.failed, run_id, f"preflight stopped: {type(exc).__name__}: {exc}")
                return
            self.wizard.from_thread(self.finished, run_id, report)

        self.run_worker(work, thread=True, group="preflight", name="preflight")

    # --- listener callbacks (UI thread) -----------------------------------------------------

    def host_started(self, run_id: int, host: str, total: int) -> None:
        if run_id == self.run_id:
            self.host_status[host] = f"started ({total} checks)"
            self._show_status()

    def host_phase(self, run_id: int, host: str, phase: str) -> None:
        if run_id == self.run_id:
            self.host_status[host] = phase
            self._show_status()

    def check_finished(self, run_id: int, host: str, result: CheckResult) -> None:
        if run_id != self.run_id:
            return
        key = f"{host}/{result.name}"
        table = self.query_one("#checks", DataTable)
        verdict = Text(result.verdict, style=STYLES.get(result.verdict, ""))
        message = result.message or (f"blocked by {result.blocked_by}" if result.blocked_by else result.observed)
        if key in self.results:
            table.update_cell(key, "verdict", verdict)
            table.update_cell(key, "message", message)
        else:
            table.add_row(host, result.name, verdict, message, key=key)
        self.results[key] = result
        if len(self.results) == 1:
            self._show_detail(key)

    def host_finished(self, run_id: int, report: HostReport) -> None:
        if run_id == self.run_id:
            counts = {v: sum(r.verdict == v for r in report.results) for v in ("passed", "warning", "error", "blocked")}
            self.host_status[report.name] = (f"done: {counts['passed']} passed, {counts['warning']} warnings, "
                                             f"{counts['error']} errors, {counts['blocked']} blocked")
            self._show_status()

    def finished(self, run_id: int, report: PreflightReport) -> None:
        if run_id != self.run_id:
            return
        self.running = False
        self.report = report
        self._redraw_in_report_order(report)
        errors = [f"{h.name}/{r.name}" for h in report.hosts for r in h.results if r.is_error]
        if errors:
            self.set_screen_error(
                f"{len(errors)} check(s) failed with severity error: {', '.join(errors[:6])}"
                f"{' …' if len(errors) > 6 else ''}. Fix them and re-run (r), or skip a check by name (s)."
            )
        else:
            self.set_screen_error("")
            from installer.checks.render import summary_line

            self.notify(f"Preflight passed: {summary_line(report)}")

    def _redraw_in_report_order(self, report: PreflightReport) -> None:
        """Rows came in as checks finished; once all are in, list them host by host in
        catalog order (as `dvp check` prints them), keeping the selected row."""
        table = self.query_one("#checks", DataTable)
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        self.results.clear()
        for host in report.hosts:
            for result in host.results:
                self.check_finished(self.run_id, host.name, result)
        keys = list(self.results)
        if selected in self.results:
            table.move_cursor(row=keys.index(selected))

    def failed(self, run_id: int, message: str) -> None:
        if run_id == self.run_id:
            self.running = False
            self.set_screen_error(message)

    # --- details, keys ----------------------------------------------------------------------

    def _show_status(self) -> None:
        lines = [f"{host}: {status}" for host, status in self.host_status.items()]
        self.query_one("#host-status", Static).update("\n".join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_detail(event.row_key.value)

    def _show_detail(self, key: str) -> None:
        result = self.results.get(key)
        if result is None:
            return
        host = key.split("/", 1)[0]
        text = Text()
        text.append(f"{result.name} on {host}: ", style="bold")
        text.append(result.verdict, style=STYLES.get(result.verdict, ""))
        if result.verdict not in ("passed", "skipped"):  # "passed (error)" reads as a contradiction
            text.append(f" (a failure here is {'an' if result.severity.value == 'error' else 'a'} "
                        f"{result.severity.value})")
        text.append(f"\n{result.description}\n")
        for label, value in (("message", result.message), ("observed", result.observed),
                             ("expected", result.expected), ("fix", result.fix),
                             ("blocked by", result.blocked_by or "")):
            if value:
                text.append(f"{label}: ", style="bold")
                text.append(f"{value}\n")
        self.query_one("#detail", Static).update(text)

    def selected_check(self) -> str | None:
        table = self.query_one("#checks", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.results[key].name if key in self.results else None

    def action_rerun(self) -> None:
        if self.running:
            self.notify("the preflight is still running", severity="warning")
            return
        self.start()

    def action_skip(self) -> None:
        name = self.selected_check()
        if name is None:
            return
        self.draft.skip_check(name)
        if self.running:
            self.notify(f"{name} added to checks.skip; re-run (r) when this run ends")
        else:
            self.notify(f"{name} added to checks.skip; re-running")
            self.start()

    def action_next(self) -> None:
        from installer.tui.screens.settings import SettingsScreen

        if self.config_invalid and not self.running:
            self.app.push_screen(SettingsScreen())
            return
        if self.running or self.report is None:
            self.set_screen_error("wait for the preflight to finish (or fix the config and re-run with r)")
            return
        if not self.report.ok:
            return  # finished() already says which checks failed and what to do
        self.app.push_screen(SettingsScreen())
