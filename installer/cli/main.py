"""Entry point of the `dvp` executable.

Subcommands live next to the code they drive (the API server's command in
`controlplane.embedded`, the agent's in `controlplane.nodehandler`, ...). They are imported
only when invoked, so `dvp --version` and `dvp --help` stay fast in the single binary.
To add a command, add one line to `COMMANDS`.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from controlplane.common.version import __version__

# name -> (module, attribute, one-line help shown by `dvp --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "v": ("controlplane.cli.cmd", "v", "Work with virtual machines: console, vnc, start, stop, restart, migrate, evict, top."),
    "node": ("controlplane.cli.node", "node", "Drain a node (its VMs move live), cordon or uncordon it."),
    "controller": ("controlplane.controllers.cmd", "controller", "Run the controllers against a Kubernetes API (dkp target)."),
    "server": ("controlplane.embedded.cmd", "server", "Run the embedded control plane (API server, DVCR, controllers)."),
    "config": ("installer.config.cli", "config", "Print an example install config, or validate one."),
    "check": ("installer.checks.cli", "check", "Run the preflight checks on every host of an install config."),
    "dvcr": ("controlplane.dvcr.cli", "dvcr", "DVCR: serve the VM image registry, import images, upload URLs, GC."),
    "agent": ("controlplane.embedded.agent_cmd", "agent", "Run the node handler: this host's VMs with libvirt + QEMU."),
    "version": ("controlplane.embedded.version_cmd", "version", "Show this dvp's version and, with --cluster, every component's."),
    "datastore": ("controlplane.apiserver.datastore_cli", "datastore", "Back up, restore or describe the server's datastore (on its host)."),
    "upgrade": ("installer.upgrade.cli", "upgrade", "Upgrade an installed platform host by host, VMs kept running; history."),
    "install": ("installer.install.cli", "install", "Install the platform on the hosts of an install config (TUI or --config)."),
    "monitoring": ("controlplane.embedded.monitoring_cmd", "monitoring", "Print the alert rules and Grafana dashboards shipped with dvp."),
    "uninstall": ("installer.uninstall.cli", "uninstall", "Remove the platform from its hosts (services, files, bridge); --dry-run lists it."),
    "docs": ("installer.docs.cli", "docs", "Show the documentation shipped in this binary (install, upgrade, ...)."),
    "examples": ("installer.docs.cli", "examples", "Print example manifests (`dvp examples quickstart | kubectl apply -f -`)."),
    "user": ("controlplane.embedded.user_cmd", "user", "On the server host: platform users (token + kubeconfig, bound to a role)."),
    "join": ("controlplane.embedded.join", "join", "On the server host: a worker's join kubeconfig (own token) and console certificate."),
    "libvirt-cert": ("controlplane.embedded.libvirt_cert", "libvirt_cert", "On the server host: a host's certificates for libvirtd's migration listener."),
}
# internal commands, not listed by `dvp --help`: `dvp server` runs each of its components as
# `dvp __component NAME` (the same executable, so the one-file binary works as well)
HIDDEN_COMMANDS: dict[str, tuple[str, str, str]] = {
    "__component": ("controlplane.embedded.child", "component", "One component of `dvp server` (internal)."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | (set(self._lazy) - set(HIDDEN_COMMANDS)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module, attr, _ = self._lazy[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command), f"{module}.{attr} is not a click command"
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in sorted(self._lazy.items()) if name not in HIDDEN_COMMANDS]
        rows += [(name, cmd.get_short_help_str()) for name, cmd in sorted(self.commands.items()) if not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, lazy={**COMMANDS, **HIDDEN_COMMANDS}, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dvp")
def cli() -> None:
    """dvp: install and run the Deckhouse Virtualization Platform on bare-metal hosts.

    `dvp install` puts the platform on hosts; `dvp server` is its embedded control plane,
    serving the virtualization.deckhouse.io/v1alpha2 API that kubectl talks to.
    """


# Hidden: `dvp ansible-playbook` runs ansible's CLI in-process (how the single binary runs
# playbooks); the module imports nothing heavy until the command runs.
from installer.install.ansible_cli import ansible_playbook  # noqa: E402

cli.add_command(ansible_playbook)


def main() -> None:
    cli(prog_name="dvp")


if __name__ == "__main__":  # pragma: no cover
    main()
