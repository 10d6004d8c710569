"""`dvp uninstall`: the command line of installer/uninstall/run.py.

The hosts come from `--config FILE`, or else from the config the last `dvp install` run in the
state directory recorded (its path, or the copy in the run directory). Exit status: 0 removed
(or a dry run), 1 failed on a host (run it again: every step is idempotent), 2 refused before
anything changed (VMs exist, disks not confirmed, no config).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from installer.uninstall.run import EXIT_REFUSED, UninstallOptions, UninstallResult


def find_config(config_path: Path | None, state_dir: Path | None) -> Path:
    """The install config given, or the one the last install run recorded in the state dir."""
    if config_path is not None:
        return config_path
    from installer.install.rundir import RunDir, RunDirError, default_state_dir

    state = (state_dir or default_state_dir()).expanduser()
    try:
        run = RunDir.latest(state)
    except RunDirError:
        raise click.UsageError(f"no install recorded under {state}: give --config FILE (the install config) "
                               "or the --state-dir the install used") from None
    recorded = run.state.get("config_path")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    return run.path / "config.yaml"


@click.command("uninstall", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The install config [default: the one the last install in the state directory used].")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The install's state directory [default: ~/.local/state/dvp].")
@click.option("--dry-run", is_flag=True, help="List every service, path and object that would be removed; change nothing.")
@click.option("--delete-vms", is_flag=True, help="Delete existing VirtualMachines through the API first (else refused).")
@click.option("--keep-data", is_flag=True, help="Keep the datastore and the VM volumes (a later install adopts them).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before deleting VM disk volumes.")
@click.option("--accept-new-host-keys", is_flag=True, help="Record host keys not yet in known_hosts.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def uninstall(config_path: Path | None, state_dir: Path | None, dry_run: bool, delete_vms: bool, keep_data: bool,
              yes: bool, accept_new_host_keys: bool, output: str) -> None:
    """Remove the platform from every host of the install: services, binaries, units or init
    scripts, sysctl and module files, the VM bridge and dnsmasq, configuration, state, logs and
    unpacked binaries. Refused while VirtualMachines exist unless --delete-vms; asks before
    deleting VM disks unless --yes. The hosts pass the preflight's leftovers checks afterwards."""
    from installer.checks.catalog import check_names
    from installer.config.errors import ConfigInvalid
    from installer.config.loader import load_config
    from installer.uninstall.run import uninstall as run_uninstall

    path = find_config(config_path, state_dir)
    try:
        config = load_config(path, known_checks=check_names())
    except ConfigInvalid as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        sys.exit(EXIT_REFUSED)
    options = UninstallOptions(dry_run=dry_run, keep_data=keep_data, delete_vms=delete_vms, yes=yes,
                               accept_new_host_keys=accept_new_host_keys)
    result = run_uninstall(config, options, confirm=_confirm)
    if output == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        _print(result, path)
    sys.exit(result.exit_code)


def _confirm(question: str) -> bool:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    return click.confirm(question, default=False, err=True)


def _print(result: UninstallResult, config_path: Path) -> None:
    click.echo(f"install config: {config_path}")
    for vm in result.vms:
        click.echo(f"VirtualMachine {vm}")
    for report in result.hosts:
        click.echo(f"{report.host}:" + (f" FAILED: {report.message}" if not report.ok else ""))
        for line in report.lines() or ["nothing installed"]:
            click.echo(f"  {line}")
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(result.message, err=result.exit_code != 0)
