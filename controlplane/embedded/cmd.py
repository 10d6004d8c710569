"""`dvp server`: the embedded control plane's command line (flags into a typed config)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from controlplane.common.logs import setup_logging


def _split_listen(value: str, option: str = "--listen") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:6443)", param_hint=option)
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
@click.option("--dvcr-listen", default="127.0.0.1:5443", show_default=True,
              help="HOST:PORT of DVCR, the VM image registry (HTTPS; port 0 picks a free one; DATA_DIR/dvcr.json "
                   "records it).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]),
              show_default=True)
def server(data_dir: Path, listen: str, advertise_address: str, tls_san: tuple[str, ...], watch_history: int,
           dvcr_listen: str, log_level: str) -> None:
    """Run the embedded control plane: the Kubernetes-compatible API server serving the
    virtualization.deckhouse.io API (SQLite under --data-dir, TLS, bearer tokens).

    On first start it creates a CA, a serving certificate and an admin token and writes
    DATA_DIR/kubeconfig; point kubectl at it with KUBECONFIG=DATA_DIR/kubeconfig.
    DVCR, the registry of VM images, listens on --dvcr-listen with a certificate from the
    same CA; DATA_DIR/dvcr.json says where, DATA_DIR/dvcr-*.json hold its users' credentials.
    """
    from controlplane.api.crds import load_crds
    from controlplane.apiserver.server import ServerConfig
    from controlplane.apiserver.storage import StoreSettings
    from controlplane.common.eventloop import run_event_loop
    from controlplane.dvcr.server import DvcrConfig
    from controlplane.embedded.components import ApiServerComponent, DvcrComponent
    from controlplane.embedded.runner import ComponentError, Runner

    setup_logging(log_level)
    host, port = _split_listen(listen)
    config = ServerConfig(data_dir=data_dir, host=host, port=port, advertise_host=advertise_address,
                          extra_sans=list(tls_san), crds=load_crds(),
                          store=StoreSettings(history_events=watch_history, compact_every=max(1, watch_history // 10)))
    dvcr_host, dvcr_port = _split_listen(dvcr_listen, "--dvcr-listen")
    dvcr = DvcrConfig(data_dir=data_dir, host=dvcr_host, port=dvcr_port, advertise_host=advertise_address,
                      extra_sans=list(tls_san), ca_dir=config.pki_dir)
    api = ApiServerComponent(config)
    try:
        run_event_loop(Runner([api, DvcrComponent(api, dvcr)]).run())
    except ComponentError as exc:
        logging.getLogger("dvp").error("%s", exc)
        sys.exit(1)
