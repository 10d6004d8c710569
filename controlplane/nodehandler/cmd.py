"""`dvp agent`: the node handler's command line (flags into a typed AgentConfig, then run)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from controlplane.common.logs import setup_logging

_PATH = click.Path(path_type=Path)


@click.command("agent")
@click.option("--kubeconfig", type=_PATH, help="Kubeconfig of the node's identity (required unless in --config).")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="YAML file with these settings (keys as the flags, e.g. node-name); flags win.")
@click.option("--node-name", help="Name of this node's Node object [default: the host name].")
@click.option("--state-dir", type=_PATH, help="Volumes, image cache, seeds, network state [default: /var/lib/dvp].")
@click.option("--run-dir", type=_PATH, help="Unix sockets (VNC) [default: /run/dvp].")
@click.option("--libvirt-uri", help="libvirt connection URI [default: qemu:///system].")
@click.option("--domain-prefix", help="Prefix of libvirt domain names [default: dvp-].")
@click.option("--domain-type", type=click.Choice(["auto", "kvm", "qemu"]),
              help="auto: KVM when the host really offers it, else emulation [default: auto].")
@click.option("--host-root", type=_PATH, help="Where /proc, /sys and /dev are read [default: /].")
@click.option("--node-ip", help="Address published as the Node's InternalIP [default: the default route's].")
@click.option("--console-listen", help="HOST:PORT of the console/VNC endpoint [default: 0.0.0.0:10250].")
@click.option("--tls-cert-file", type=_PATH, help="Serving certificate of the console endpoint.")
@click.option("--tls-key-file", type=_PATH, help="Its private key.")
@click.option("--pki-dir", type=_PATH, help="Directory with the platform CA (ca.crt, ca.key) to issue the "
                                            "console endpoint's certificate from.")
@click.option("--bridge", help="The VM network's bridge [default: dvpbr0].")
@click.option("--vm-cidr", help="The VM network's subnet; the node takes its first address [default: 10.66.0.0/16].")
@click.option("--reserved-memory", help="Memory kept for the host (Node allocatable) [default: 512Mi].")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]),
              show_default=True)
def agent(config_file: Path | None, log_level: str, **flags: Any) -> None:
    """Run the node handler: register this host as a Node, and run the VMs the control plane
    places here (InternalVirtualMachineInstances) with libvirt + QEMU, their disk volumes,
    the VM network, and console/VNC streams (docs/nodehandler.md).

    Killing it leaves the VMs running; started again, it adopts them.
    """
    from controlplane.nodehandler.agent import Agent, AgentStartError
    from controlplane.nodehandler.config import AgentConfig, ConfigError, load_config_file

    setup_logging(log_level)
    from controlplane.common import upgradetest

    if upgradetest.fails("agent"):  # only in upgrade-test builds, for the upgrade's rollback tests
        logging.getLogger("dvp").error("starting the node handler: failure injected by %s", upgradetest.FAIL_FILE)
        sys.exit(1)
    try:
        if config_file is not None:
            config = load_config_file(config_file, **flags)
        else:
            if flags.get("kubeconfig") is None:
                raise click.UsageError("--kubeconfig is required (or give it in --config)")
            config = AgentConfig(**{k: v for k, v in flags.items() if v is not None}).validate()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc

    async def main() -> None:
        node = Agent(config)
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
