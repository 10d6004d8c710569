"""`dvp node drain|cordon|uncordon NODE`: take a host out of service with its VMs moved live
(drain.py does the work; this module is the command line and its progress view)."""

from __future__ import annotations

import json
import sys

import click

from controlplane.common.drain import DrainResult, VMDrain, cordon, drain, vms_on

_kubeconfig = click.option("--kubeconfig", default=None, envvar="KUBECONFIG", help="Kubeconfig file (default: $KUBECONFIG).")


def _kube(kubeconfig: str | None):  # type: ignore[no-untyped-def]
    from controlplane.cli.cmd import _default_kubeconfig
    from controlplane.common.kube.client import KubeClient
    from controlplane.common.kubeconfig import KubeconfigError

    try:
        return KubeClient.from_kubeconfig(kubeconfig or _default_kubeconfig())
    except KubeconfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("node", context_settings={"help_option_names": ["-h", "--help"]})
def node() -> None:
    """Take nodes out of service and back: drain (VMs move live), cordon, uncordon."""


_output = click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)


def _set_cordon(name: str, kubeconfig: str | None, output: str, unschedulable: bool) -> None:
    from controlplane.common.kube.client import KubeError

    kube = _kube(kubeconfig)
    try:
        cordon(kube, name, unschedulable)
        vms = [f"{(vm.get('metadata') or {}).get('namespace')}/{(vm.get('metadata') or {}).get('name')}"
               for vm in vms_on(kube, name)]
    except KubeError as exc:
        raise click.ClickException(f"node/{name}: {exc.message}" if exc.status == 404 else str(exc)) from exc
    if output == "json":
        click.echo(json.dumps({"node": name, "unschedulable": unschedulable, "runningVMs": vms}, indent=1))
        return
    click.echo(f"node/{name} {'cordoned' if unschedulable else 'uncordoned'}"
               + (f"; {len(vms)} running VM(s) stay until drained" if unschedulable and vms else ""))


@node.command("cordon")
@click.argument("name")
@_output
@_kubeconfig
def cordon_cmd(name: str, output: str, kubeconfig: str | None) -> None:
    """Mark node NAME unschedulable (running VMs stay; `dvp node drain` moves them)."""
    _set_cordon(name, kubeconfig, output, True)


@node.command("uncordon")
@click.argument("name")
@_output
@_kubeconfig
def uncordon_cmd(name: str, output: str, kubeconfig: str | None) -> None:
    """Mark node NAME schedulable again."""
    _set_cordon(name, kubeconfig, output, False)


@node.command("drain")
@click.argument("name")
@click.option("--timeout", type=float, default=1800, show_default=True, help="Seconds the whole drain may take.")
@click.option("--force-stop", is_flag=True, help="Stop the VMs that cannot migrate live instead of failing.")
@_output
@_kubeconfig
def drain_cmd(name: str, timeout: float, force_stop: bool, output: str, kubeconfig: str | None) -> None:
    """Cordon node NAME and move every VM off it live (one Evict each), showing progress."""
    kube = _kube(kubeconfig)
    try:
        if output == "json":
            result = drain(kube, name, timeout=timeout, force_stop=force_stop)
            click.echo(json.dumps(result.to_json(), indent=1))
        else:
            result = _drain_with_progress(kube, name, timeout=timeout, force_stop=force_stop)
            _print_result(result)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(0 if result.ok else 1)


def _drain_with_progress(kube, name: str, *, timeout: float, force_stop: bool) -> DrainResult:  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[state]}"),
                  TimeElapsedColumn(), transient=False) as bar:
        overall = bar.add_task(f"drain {name}", total=None, state="cordoned")
        tasks: dict[str, TaskID] = {}

        def progress(vms: list[VMDrain]) -> None:
            bar.update(overall, total=len(vms) or 1, completed=sum(v.done for v in vms) if vms else 1,
                       state=f"{sum(v.ok for v in vms)}/{len(vms)} moved")
            for vm in vms:
                key = f"{vm.namespace}/{vm.name}"
                if key not in tasks:
                    tasks[key] = bar.add_task(f"  {key}", total=1, state="")
                state = vm.phase + (f" -> {vm.target}" if vm.target else "") + (f": {vm.message}" if vm.message else "")
                bar.update(tasks[key], completed=1 if vm.done else 0, state=state[:100])

        return drain(kube, name, timeout=timeout, force_stop=force_stop, progress=progress)


def _print_result(result: DrainResult) -> None:
    if not result.vms:
        click.echo(f"node/{result.node} drained: no running VMs")
        return
    for vm in result.vms:
        mark = "ok  " if vm.ok else "FAIL"
        where = f" -> {vm.target}" if vm.target else ""
        click.echo(f"{mark} {vm.namespace}/{vm.name}: {vm.action if vm.action != 'None' else 'not moved'} "
                   f"{vm.phase}{where} ({vm.seconds:.0f}s){': ' + vm.message if vm.message and not vm.ok else ''}")
    click.echo(f"node/{result.node} {'drained' if result.ok else 'NOT drained'} in {result.seconds:.0f}s")
