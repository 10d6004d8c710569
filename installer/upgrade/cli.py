"""`dvp upgrade --config FILE --bundle PATH` and `dvp upgrade history`: the command line of the
upgrade (flow in `installer/upgrade/__init__.py`, behaviour in docs/upgrade.md).

Exit status: 0 upgraded (or a dry run, or an interrupted upgrade finished); 1 a step failed and
the platform was rolled back (or the rollback failed: then the message says what is left), or,
after the commit of a two-pass `--reboot` upgrade, the reboots are pending (not rolled back);
2 refused before anything changed (preflight, bundle, config).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


def _load_platform(config_path: Path | None, accept_new_host_keys: bool, state_dir: Path | None = None) -> Any:
    from installer.config.errors import ConfigInvalid
    from installer.config.loader import load_config
    from installer.uninstall.cli import find_config
    from installer.upgrade.platform import PlatformError, from_install_config

    # without --config: the config the last `dvp install` in the state directory recorded
    config_path = find_config(config_path, state_dir)
    try:
        config = load_config(config_path)
        return from_install_config(config, accept_new_host_keys=accept_new_host_keys)
    except ConfigInvalid as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        sys.exit(EXIT_REFUSED)
    except PlatformError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)


def _connect(platform: Any, run_dir: Path, kubeconfig: Path | None) -> Any:
    from controlplane.common.kube.quick import quick_client
    from installer.upgrade.platform import fetch_kubeconfig
    from installer.upgrade.remote import RemoteError

    try:
        platform.connect()
        path = kubeconfig or fetch_kubeconfig(platform, run_dir)
    except RemoteError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    return quick_client(path, user_agent="dvp-upgrade")


_common = [
    click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
                 help="The install config the platform was installed with (hosts, SSH) "
                 "[default: the one the last install in the state directory used]."),
    click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                 help="Admin kubeconfig [default: read from the server host]."),
    click.option("--accept-new-host-keys", is_flag=True, help="Record host keys not yet in known_hosts."),
    click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
                 help="Where run directories go [default: ~/.local/state/dvp]."),
    click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True),
]


def common(fn: Any) -> Any:
    for opt in reversed(_common):
        fn = opt(fn)
    return fn


@click.group("upgrade", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@common
@click.option("--bundle", type=click.Path(path_type=Path, dir_okay=False), help="The new `dvp` single binary.")
@click.option("--sha256", help="Expected SHA-256 of the bundle (from the release notes).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--allow-downgrade", is_flag=True, help="Allow a bundle older than the installed version.")
@click.option("--yes", is_flag=True, help="Confirm VM restarts the plan lists (unattended runs).")
@click.option("--rollback", "rollback_only", is_flag=True, help="Roll back an unfinished upgrade instead of finishing it.")
@click.option("--server-timeout", default=180.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds the restarted server has to become healthy.")
@click.option("--node-timeout", default=180.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds a restarted agent has to report Ready on the new version.")
@click.option("--reboot", is_flag=True, help="Reboot every host after its binary is replaced; with several hosts each "
              "is drained first (its VMs move live, to upgraded hosts first) and uncordoned after.")
@click.option("--reboot-command", default=None, metavar="CMD",
              help="What reboots a host (run as root over SSH) [default: systemctl reboot || shutdown -r now]. "
              "The host is back when SSH answers with a new boot id or a new dvp service process.")
@click.option("--force-stop", is_flag=True, help="With --reboot: stop the VMs that cannot migrate live instead of failing.")
@click.option("--drain-timeout", default=1800.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds the drain of one host may take (--reboot).")
@click.option("--reboot-timeout", default=600.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds a rebooted host has to answer SSH again (--reboot).")
@click.option("-v", "--verbose", count=True, help="Log SSH details to stderr.")
@click.pass_context
def upgrade(ctx: click.Context, config_path: Path | None, kubeconfig: Path | None, accept_new_host_keys: bool,
            state_dir: Path | None, output: str, bundle: Path | None, sha256: str | None, dry_run: bool,
            allow_downgrade: bool, yes: bool, rollback_only: bool, server_timeout: float, node_timeout: float,
            reboot: bool, reboot_command: str | None, force_stop: bool, drain_timeout: float, reboot_timeout: float,
            verbose: int) -> None:
    """Upgrade the installed platform to the `dvp` binary BUNDLE, host by host: the server host
    first, then each agent host; VMs keep running. With --reboot each host is drained (VMs move
    live), rebooted and uncordoned in turn; when the new server also migrates the datastore, every
    host is upgraded in place first and the reboots follow. Any failed step rolls every changed
    host back, except in that second pass: then the same bundle finishes the reboots.
    `dvp upgrade history` lists past upgrades."""
    if ctx.invoked_subcommand is not None:
        return
    from installer.upgrade.reboot import DEFAULT_REBOOT_COMMAND
    from installer.upgrade.run import UpgradeRequest, execute

    if verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    request = UpgradeRequest(bundle=bundle, sha256=sha256, dry_run=dry_run, allow_downgrade=allow_downgrade, yes=yes,
                             rollback_only=rollback_only, server_timeout=server_timeout, node_timeout=node_timeout,
                             output=output, reboot=reboot or reboot_command is not None,
                             reboot_command=reboot_command or DEFAULT_REBOOT_COMMAND, force_stop=force_stop,
                             drain_timeout=drain_timeout, reboot_timeout=reboot_timeout)
    platform = _load_platform(config_path, accept_new_host_keys, state_dir)
    sys.exit(execute(platform, request, state_dir=state_dir, kubeconfig=kubeconfig, connect=_connect))


@upgrade.command("history")
@common
def history(config_path: Path | None, kubeconfig: Path | None, accept_new_host_keys: bool, state_dir: Path | None,
            output: str) -> None:
    """List the upgrades recorded on the server host (from, to, start, end, result, hosts)."""
    from installer.upgrade.records import RecordStore
    from installer.upgrade.remote import RemoteError

    platform = _load_platform(config_path, accept_new_host_keys, state_dir)
    try:
        platform.connect()
        records = RecordStore(platform.server.s()).all()
    except RemoteError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    finally:
        platform.close()
    if output == "json":
        click.echo(json.dumps([r.to_json() for r in records], indent=2))
        return
    table = Table(title="dvp upgrades")
    for col in ("id", "from", "to", "started", "ended", "result", "hosts"):
        table.add_column(col)
    for r in records:
        hosts = ", ".join(f"{h.name}:{h.state}" for h in r.hosts)
        result = r.state + (f" ({r.failure.get('host')} {r.failure.get('step')}: {r.failure.get('reason', '')[:60]})"
                            if r.failure else "")
        table.add_row(r.id, r.from_version, r.to_version, r.started, r.ended or "-", result, hosts)
    Console().print(table)
