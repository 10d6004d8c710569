"""`dvp agent`: the node handler's command line (flags into a typed AgentConfig, then run).

`agent_command(image_sources)` builds the command; the layer that composes components
(controlplane/embedded/agent_cmd.py) gives it the DVCR image source, which this package may
not import. `--check` only asks the API server whether this node may join (joincheck.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from controlplane.common import cpu_share, gc_tuning
from controlplane.common.logs import setup_logging
from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.images import ImageSource

_PATH = click.Path(path_type=Path)
ImageSources = Callable[[AgentConfig], Sequence[ImageSource]]


def agent_command(image_sources: ImageSources | None = None) -> click.Command:
    """`dvp agent`, pulling images through the sources `image_sources(config)` returns."""
    return click.command("agent")(_with_options(_agent_main(image_sources)))


def _with_options(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


_OPTIONS = [
    click.option("--kubeconfig", type=_PATH, help="Kubeconfig of the node's identity (required unless in --config)."),
    click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="YAML file with these settings (keys as the flags, e.g. node-name); flags win."),
    click.option("--node-name", help="Name of this node's Node object [default: the host name]."),
    click.option("--state-dir", type=_PATH, help="Volumes, image cache, seeds, network state [default: /var/lib/dvp]."),
    click.option("--run-dir", type=_PATH, help="Unix sockets (VNC) [default: /run/dvp]."),
    click.option("--libvirt-uri", help="libvirt connection URI [default: qemu:///system]."),
    click.option("--domain-prefix", help="Prefix of libvirt domain names [default: dvp-]."),
    click.option("--domain-type", type=click.Choice(["auto", "kvm", "qemu"]),
              help="auto: KVM when the host really offers it, else emulation [default: auto]."),
    click.option("--host-root", type=_PATH, help="Where /proc, /sys and /dev are read [default: /]."),
    click.option("--node-ip", help="Address published as the Node's InternalIP [default: the default route's]."),
    click.option("--console-listen", help="HOST:PORT of the console/VNC endpoint [default: 0.0.0.0:10250]."),
    click.option("--tls-cert-file", type=_PATH, help="Serving certificate of the console endpoint."),
    click.option("--tls-key-file", type=_PATH, help="Its private key."),
    click.option("--pki-dir", type=_PATH, help="Directory with the platform CA (ca.crt, ca.key) to issue the "
                                            "console endpoint's certificate from."),
    click.option("--bridge", help="The VM network's bridge [default: dvpbr0]."),
    click.option("--vm-cidr", help="The VM network's subnet; the node takes its first address [default: 10.66.0.0/16]."),
    click.option("--vm-routes/--no-vm-routes", default=None,
                 help="Route VM addresses running on other nodes to them (docs/network.md) [default: off]."),
    click.option("--vm-route-mode", type=click.Choice(["auto", "direct", "vxlan"]),
                 help="How VMs of other nodes are reached: directly, through VXLAN, or auto (directly when the "
                      "node is on one of this host's subnets) [default: auto]."),
    click.option("--cpu-nice", type=click.IntRange(cpu_share.MIN_NICE, cpu_share.MAX_NICE),
                 help="Nice value of the handler and of its CPU group, so guests that keep every core busy do not "
                      "starve it (0: leave it as started) [default: -10]."),
    click.option("--reserved-memory", help="Memory kept for the host (Node allocatable) [default: 512Mi]."),
    click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]),
              show_default=True),
    click.option("--dvcr-url", help="DVCR's URL (https://MASTER:5443): images are pulled from it with this node's token."),
    click.option("--dvcr-ca-file", type=_PATH, help="CA certificate DVCR's serving certificate is checked with."),
    click.option("--check", "check_only", is_flag=True,
                 help="Only check that this node may join (the API server accepts its token, clocks agree); exit 1 if not."),
]


def _agent_main(image_sources: ImageSources | None) -> Callable[..., None]:
    def agent(config_file: Path | None, log_level: str, check_only: bool, **flags: Any) -> None:
        """Run the node handler: register this host as a Node, and run the VMs the control plane
        places here (InternalVirtualMachineInstances) with libvirt + QEMU, their disk volumes,
        the VM network, and console/VNC streams (docs/nodehandler.md).

        Killing it leaves the VMs running; started again, it adopts them.
        """
        config = _load(config_file, log_level, flags)
        if check_only:
            _check(config)
            return
        _run(config, list(image_sources(config)) if image_sources is not None else [])

    return agent


def _load(config_file: Path | None, log_level: str, flags: dict[str, Any]) -> AgentConfig:
    from controlplane.nodehandler.config import ConfigError, load_config_file

    setup_logging(log_level)
    from controlplane.common import upgradetest

    if upgradetest.fails("agent"):  # only in upgrade-test builds, for the upgrade's rollback tests
        logging.getLogger("dvp").error("starting the node handler: failure injected by %s", upgradetest.FAIL_FILE)
        sys.exit(1)
    try:
        if config_file is not None:
            return load_config_file(config_file, **flags)
        if flags.get("kubeconfig") is None:
            raise click.UsageError("--kubeconfig is required (or give it in --config)")
        return AgentConfig(**{k: v for k, v in flags.items() if v is not None}).validate()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def _check(config: AgentConfig) -> None:
    from controlplane.nodehandler.joincheck import check_join, report

    problems = check_join(config.kubeconfig, config.node_name)
    click.echo(report(problems))
    if problems:
        click.echo("; ".join(p.message for p in problems), err=True)  # one line: the install shows the last
        sys.exit(1)


def _run(config: AgentConfig, sources: list[ImageSource]) -> None:
    from controlplane.nodehandler.agent import Agent, AgentStartError

    cpu_share.claim(config.cpu_nice)
    gc_tuning.tune()

    async def main() -> None:
        node = Agent(config, image_sources=sources)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await node.start()
            await stop.wait()
        finally:
            await node.stop()

    try:
        asyncio.run(main())
    except AgentStartError as exc:
        logging.getLogger("dvp").error("starting the node handler: %s", exc)
        sys.exit(1)


agent = agent_command()
"""`dvp agent` without DVCR (images from file:// references only); the `dvp` executable runs
controlplane/embedded/agent_cmd.py's, which pulls from DVCR too."""
