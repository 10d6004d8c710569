"""Step 7: how it ended. On success: where the kubeconfig is, the API URL, and the next
commands (from `InstallResult.next_steps`). On failure: the phase, the message naming host,
task and reason, the run directory with the logs, and how to continue (`dvp install --resume`).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from installer.install.events import InstallResult


def resume_command(state_dir: object) -> str:
    return "dvp install --resume" + (f" --state-dir {state_dir}" if state_dir else "")


def summary(result: InstallResult, *, state_dir: object = None) -> Text:
    text = Text()
    if result.ok:
        text.append("The platform is installed.\n\n", style="bold green")
        if result.kubeconfig:
            text.append("kubeconfig: ", style="bold")
            text.append(f"{result.kubeconfig}\n")
        if result.api_url:
            text.append("API:        ", style="bold")
            text.append(f"{result.api_url}\n")
        if result.next_steps:
            text.append("\nNext:\n", style="bold")
            for step in result.next_steps:
                text.append(f"  {step}\n")
    else:
        text.append("The install failed", style="bold red")
        text.append(f" in phase {result.failed_phase}.\n\n" if result.failed_phase else ".\n\n")
        text.append(f"{result.message or 'no reason was reported'}\n\n")
        text.append("Fix the cause, then continue where it stopped:\n", style="bold")
        text.append(f"  {resume_command(state_dir)}\n")
    text.append("\nrun directory (config, Ansible events, log): ", style="dim")
    text.append(f"{result.run_dir}\n", style="dim")
    return text


class DoneScreen(Screen[None]):
    BINDINGS = [
        Binding("q", "finish", "Quit"),
        Binding("enter", "finish", "Quit"),
    ]

    def __init__(self, result: InstallResult, *, state_dir: object = None) -> None:
        super().__init__()
        self.result = result
        self.text = summary(result, state_dir=state_dir)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Done. q or enter: quit.", classes="help-line")
        with VerticalScroll(classes="body"):
            yield Static(self.text, id="summary")
        yield Footer()

    def action_finish(self) -> None:
        code = 0 if self.result.ok else 1
        self.app.exit(code, return_code=code)
