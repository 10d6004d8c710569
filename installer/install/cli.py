"""`dvp install`: unattended with `--config FILE` (or `--resume`), the Textual TUI on a terminal
otherwise. Both call the same engine (installer/install/engine.py); this file only draws its
events as rich progress (one line per phase and host: current task, ok/changed/failed, time)
and prints where the kubeconfig is and what to do next.

Exit status: 0 installed, 1 a phase failed (resumable with --resume), 2 bad config or usage,
130 interrupted by SIGINT/SIGTERM (the phase is recorded as `interrupted`; the exact `--resume`
command is printed).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


def _extra_vars(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not a JSON object: {exc}", param_hint="--extra-vars") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and k.startswith("dvp_") for k in data):
        raise click.BadParameter("expected a JSON object of dvp_* role variables", param_hint="--extra-vars")
    return data


@click.command("install", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Install config (unattended). Without it, on a terminal, the interactive installer starts.")
@click.option("--edit", "edit_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Open the interactive installer pre-filled from this install config.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where runs are recorded [default: ~/.local/state/dvp]; runs/<time>/ per run.")
@click.option("--resume", is_flag=True, help="Continue the last run from the first phase that did not finish.")
@click.option("--dry-run", is_flag=True, help="Print what will be installed, written and started per host; change nothing.")
@click.option("--skip", "skip_checks", multiple=True, metavar="NAME", help="Skip a preflight check by name (repeatable).")
@click.option("--accept-new-host-keys", is_flag=True, help="Record host keys not yet in known_hosts.")
@click.option("--smoke", is_flag=True, help="Verify by running a small VM (blank disk) until Running, then delete it.")
@click.option("--extra-vars", "extra_vars", hidden=True, help="JSON object of dvp_* role variables (tests, experts).")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def install(config_path: Path | None, edit_path: Path | None, state_dir: Path | None, resume: bool, dry_run: bool,
            skip_checks: tuple[str, ...], accept_new_host_keys: bool, smoke: bool, extra_vars: str | None,
            output: str) -> None:
    """Install the platform on the hosts of an install config: validate, preflight, prepare
    nodes, bootstrap the API, deploy the control plane, verify. Every phase is recorded in a
    run directory; `--resume` continues a failed or interrupted run, and running the same
    install again changes nothing."""
    from installer.install.engine import InstallOptions

    options = InstallOptions(state_dir=state_dir, resume=resume, dry_run=dry_run,
                             accept_new_host_keys=accept_new_host_keys, skip_checks=skip_checks, smoke=smoke,
                             extra_vars=_extra_vars(extra_vars), command=os.environ.get("DVP_EXECUTABLE") or "dvp")
    if edit_path is not None and config_path is not None:
        raise click.UsageError("--edit opens the interactive installer; --config installs unattended: give one")
    if config_path is None and not resume:
        if sys.stdin.isatty() and sys.stdout.isatty():
            sys.exit(_run_tui(options, edit_path))
        raise click.UsageError("no terminal for the interactive installer: give --config FILE")
    config_path = config_path or _resume_config(options)
    sys.exit(_unattended(config_path, options, output))


def _run_tui(options: Any, prefill: Path | None) -> int:
    try:
        from installer.tui.app import run_tui
    except ImportError as exc:
        click.echo(f"the interactive installer is not available in this build ({exc.name or exc}); "
                   "write an install config (`dvp config example > install.yaml`) and run "
                   "`dvp install --config install.yaml`", err=True)
        return EXIT_INVALID
    return int(run_tui(prefill, options))


def _resume_config(options: Any) -> Path:
    from installer.install.rundir import RunDir, RunDirError, default_state_dir

    try:
        run = RunDir.latest((options.state_dir or default_state_dir()).expanduser())
    except RunDirError as exc:
        raise click.UsageError(str(exc)) from exc
    recorded = run.state.get("config_path")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    return run.path / "config.yaml"


def _unattended(config_path: Path, options: Any, output: str) -> int:
    from rich.console import Console

    from installer.checks.catalog import check_names
    from installer.config.errors import ConfigInvalid
    from installer.config.loader import load_config
    from installer.install.engine import plan_install, run_install
    from installer.install.progress import ProgressView, print_result

    err = Console(stderr=True)
    try:
        config = load_config(config_path, known_checks=check_names())
    except ConfigInvalid as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        return EXIT_INVALID
    unknown = [s for s in options.skip_checks if s not in check_names()]
    if unknown:
        click.echo(f"--skip: unknown check {unknown[0]!r}; `dvp check --list` lists them", err=True)
        return EXIT_INVALID
    if options.dry_run:
        plans = plan_install(config, options)
        if output == "json":
            click.echo(json.dumps([p.to_json() for p in plans], indent=2))
        else:
            out = Console()
            for plan in plans:
                out.print(f"[bold]{plan.host}[/] ({plan.address}, {plan.role})", highlight=False, soft_wrap=True)
                for line in plan.lines():
                    out.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_OK
    from installer.install.interrupt import Interrupt, catch_signals

    options.interrupt = Interrupt()
    with catch_signals(options.interrupt), ProgressView(err, enabled=err.is_terminal and output == "table") as view:
        result = run_install(config, options, view.sink, config_path=config_path)
    if output == "json":
        click.echo(json.dumps({
            "ok": result.ok, "runDir": str(result.run_dir), "kubeconfig": str(result.kubeconfig or ""),
            "apiUrl": result.api_url or "", "failedPhase": result.failed_phase, "message": result.message,
            "changed": result.changed, "nextSteps": result.next_steps, "phases": view.phases,
            "interrupted": result.interrupted,
        }, indent=2))
    else:
        print_result(Console(), result, view.phases)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED
