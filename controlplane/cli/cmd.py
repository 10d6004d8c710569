"""`dvp v`: everyday work with virtual machines — console, VNC, start/stop/restart — as
`d8 v` does it for DVP."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from controlplane.cli.connection import Connection

_common = [
    click.option("-n", "--namespace", default=None, help="Namespace of the VM (default: the kubeconfig's)."),
    click.option("--kubeconfig", default=None, envvar="KUBECONFIG", help="Kubeconfig file (default: $KUBECONFIG)."),
]


F = TypeVar("F", bound=Callable[..., Any])


def common(fn: F) -> F:
    """The options every `dvp v` command takes (namespace, kubeconfig)."""
    for opt in reversed(_common):
        fn = opt(fn)
    return fn


@click.group("v", context_settings={"help_option_names": ["-h", "--help"]})
def v() -> None:
    """Work with virtual machines: console, vnc, start, stop, restart, migrate, evict, top."""


@v.command()
@click.argument("name")
@click.option("--timeout", type=float, default=None, help="Leave after this many seconds.")
@common
def console(name: str, timeout: float | None, namespace: str | None, kubeconfig: str | None) -> None:
    """Attach this terminal to VM NAME's serial console (leave with Ctrl+]). Without a
    terminal, stdin goes to the console and its output to stdout."""
    from controlplane.cli.console import attach

    sys.exit(asyncio.run(attach(Connection.load(kubeconfig, namespace), name, timeout=timeout)))


@v.command()
@click.argument("name")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="HOST:PORT for VNC viewers.")
@common
def vnc(name: str, listen: str, namespace: str | None, kubeconfig: str | None) -> None:
    """Serve VM NAME's display on a local port for a VNC viewer."""
    from controlplane.cli.vnc import serve
    from controlplane.common.hostport import split_host_port

    try:
        host, port = split_host_port(listen, default_host="127.0.0.1")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    asyncio.run(serve(Connection.load(kubeconfig, namespace), name, host, port))


@v.command()
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="VMs of every namespace.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@common
def top(name: str | None, all_namespaces: bool, output: str, namespace: str | None, kubeconfig: str | None) -> None:
    """Show the CPU and memory VMs use now (all VMs of the namespace, or VM NAME)."""
    from controlplane.cli.top import show

    sys.exit(show(Connection.load(kubeconfig, namespace), all_namespaces=all_namespaces, name=name, output=output))


MIGRATION_HELP = {
    "Migrate": "Move running VM NAME live to another node (--target-node, or the least loaded one).",
    "Evict": "Move running VM NAME live off its node (to the least loaded other node).",
}


def _operation(kind: str):  # type: ignore[no-untyped-def]
    migration = kind in MIGRATION_HELP

    @v.command(kind.lower(), help=MIGRATION_HELP.get(kind, f"{kind} VM NAME through a VirtualMachineOperation."))
    @click.argument("name")
    @click.option("--force", is_flag=True, help="Throttle the guest's CPUs until memory converges (auto-converge)."
                  if migration else "Don't wait for the guest (power off / reset).")
    @click.option("--target-node", default=None, hidden=not migration, help="Node to move the VM to (Migrate).")
    @click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the operation ends.")
    @click.option("--timeout", type=float, default=300, show_default=True, help="Seconds to wait.")
    @click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
    @common
    def command(name: str, force: bool, target_node: str | None, wait: bool, timeout: float, output: str,
                namespace: str | None, kubeconfig: str | None) -> None:
        from controlplane.cli.operations import run
        from controlplane.common.kube.client import KubeClient

        conn = Connection.load(kubeconfig, namespace)
        kube = KubeClient.from_kubeconfig(kubeconfig or _default_kubeconfig())
        if target_node and kind != "Migrate":
            raise click.UsageError("--target-node applies to migrate only")
        op = run(kube, conn.namespace, name, kind, force=force, wait=timeout if wait else None, target_node=target_node)
        phase = (op.get("status") or {}).get("phase", "Pending")
        if output == "json":
            click.echo(json.dumps(op, indent=1))
        else:
            msg = next((c.get("message") for c in (op.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Completed"), "")
            click.echo(f"{kind} {conn.namespace}/{name}: {phase}{(': ' + msg) if msg and phase != 'Completed' else ''}")
        if phase == "Failed":
            sys.exit(1)
    return command


def _default_kubeconfig() -> str:
    import os
    from pathlib import Path

    return os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


for _kind in ("Start", "Stop", "Restart", "Migrate", "Evict"):
    _operation(_kind)
