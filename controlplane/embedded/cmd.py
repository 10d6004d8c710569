"""`dvp server`: the embedded control plane's command line (flags into a typed config)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from controlplane.common.logs import setup_logging


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:6443)", param_hint="--listen")
    return host.strip("[]") or "0.0.0.0", int(port)


@click.command("server")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/dvp/server"), show_default=True,
              help="Where the datastore, certificates, tokens and kubeconfig live.")
@click.option("--listen", default="127.0.0.1:6443", show_default=True,
              help="HOST:PORT of the HTTPS API (port 0 picks a free one; the kubeconfig records it).")
@click.option("--advertise-address", default="", help="Host name or IP written into the kubeconfig.")
@click.option("--tls-san", multiple=True, help="Extra name or IP for the serving certificate (repeatable).")
@click.option("--watch-history", default=50_000, show_default=True, type=click.IntRange(min=10),
              help="How many past changes watches can resume from (older ones answer 410 Gone).")
@click.option("--no-agent", is_flag=True, help="Do not run the node handler in-process (hosts run `dvp agent`).")
@click.option("--agent-config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Settings of the in-process node handler (YAML, the keys of `dvp agent --config`).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]),
              show_default=True)
def server(data_dir: Path, listen: str, advertise_address: str, tls_san: tuple[str, ...], watch_history: int,
           no_agent: bool, agent_config: Path | None, log_level: str) -> None:
    """Run the embedded control plane: the Kubernetes-compatible API server serving the
    virtualization.deckhouse.io API (SQLite under --data-dir, TLS, bearer tokens).

    On first start it creates a CA, a serving certificate and an admin token and writes
    DATA_DIR/kubeconfig; point kubectl at it with KUBECONFIG=DATA_DIR/kubeconfig.
    For a one-host install it also runs the node handler (as `dvp agent`) unless --no-agent.
    """
    from controlplane.api.crds import load_crds
    from controlplane.apiserver.server import ServerConfig
    from controlplane.apiserver.storage import StoreSettings
    from controlplane.embedded.components import AgentComponent, ApiServerComponent
    from controlplane.embedded.runner import Component, ComponentError, Runner

    setup_logging(log_level)
    host, port = _split_listen(listen)
    config = ServerConfig(data_dir=data_dir, host=host, port=port, advertise_host=advertise_address,
                          extra_sans=list(tls_san), crds=load_crds(),
                          store=StoreSettings(history_events=watch_history, compact_every=max(1, watch_history // 10)))
    api = ApiServerComponent(config)
    components: list[Component] = [api]
    if not no_agent:
        components.append(AgentComponent(api, config_file=agent_config))
    try:
        asyncio.run(Runner(components).run())
    except ComponentError as exc:
        logging.getLogger("dvp").error("%s", exc)
        sys.exit(1)
