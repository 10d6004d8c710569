"""`dvp controller`: the controllers as a process of their own (the `dkp` target, where
they run as a Deployment against DKP's kube-apiserver)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from controlplane.common import stop_bound
from controlplane.common.logs import setup_logging
from controlplane.controllers.cli_options import platform_options


@click.command("controller")
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="Kubeconfig of the controllers' service account.")
@platform_options
@click.option("--dvcr-url", default="", help="https://host:port of DVCR.")
@click.option("--dvcr-ca", type=click.Path(exists=True, dir_okay=False), default=None, help="CA of DVCR's certificate.")
@click.option("--dvcr-importer-auth", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Auth file of DVCR's importer user.")
@click.option("--dvcr-admin-auth", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Auth file of DVCR's admin user.")
@click.option("--metrics-bind-address", default="", metavar="HOST:PORT",
              help="Serve Prometheus /metrics over HTTPS here (bearer tokens checked with TokenReview).")
@click.option("--metrics-tls-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Certificate of the /metrics endpoint (with --metrics-bind-address).")
@click.option("--metrics-tls-key", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Private key of the /metrics endpoint (with --metrics-bind-address).")
@click.option("--stop-timeout", default=20.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds a stop (SIGTERM) may take; past them every thread's stack is logged and the "
                   "process exits with status 1.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def controller(kubeconfig: Path, vm_cidrs: tuple[str, ...], vm_ip_hold: float, upload_wait: float, node_grace: float,
               operation_ttl: float, mac_prefix: str,
               dvcr_url: str,
               dvcr_ca: str | None, dvcr_importer_auth: str | None, dvcr_admin_auth: str | None,
               metrics_bind_address: str, metrics_tls_cert: Path | None, metrics_tls_key: Path | None,
               stop_timeout: float, log_level: str) -> None:
    """Run every controller (with leader election: start as many as you like, one acts)."""
    from controlplane.common.kube.client import KubeClient
    from controlplane.common.kubeconfig import KubeconfigError
    from controlplane.controllers.manager import Manager
    from controlplane.controllers.settings import PlatformSettings, parse_cidrs, parse_mac_prefix

    setup_logging(log_level)
    try:
        cidrs = parse_cidrs(vm_cidrs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--vm-cidr") from exc
    try:
        mac_prefix = parse_mac_prefix(mac_prefix)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mac-prefix") from exc
    settings = PlatformSettings(virtual_machine_cidrs=cidrs, ip_lease_hold_seconds=vm_ip_hold,
                                upload_wait_seconds=upload_wait, node_grace_seconds=node_grace, operation_ttl_seconds=operation_ttl,
                                mac_address_prefix=mac_prefix, dvcr_url=dvcr_url, dvcr_ca_file=dvcr_ca or "",
                                dvcr_importer_auth=dvcr_importer_auth or "", dvcr_admin_auth=dvcr_admin_auth or "")
    try:
        kube = KubeClient.from_kubeconfig(kubeconfig, user_agent="dvp-controllers")
    except KubeconfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--kubeconfig") from None
    if metrics_bind_address:
        _serve_metrics(kube, metrics_bind_address, metrics_tls_cert, metrics_tls_key)
    manager = Manager(kube, settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    manager.start()
    stop.wait()
    stop_bound.arm(stop_timeout)
    manager.stop()


def _serve_metrics(kube: object, address: str, cert: Path | None, key: Path | None) -> None:
    from controlplane.common.kube.client import KubeClient
    from controlplane.common.metrics_server import MetricsServer, token_review

    assert isinstance(kube, KubeClient)
    if cert is None or key is None:
        raise click.BadParameter("needs --metrics-tls-cert and --metrics-tls-key", param_hint="--metrics-bind-address")
    try:
        server = MetricsServer(address, cert=cert, key=key, authenticate=token_review(kube))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--metrics-bind-address") from exc
    if not server.serve_in_thread().wait(30):
        raise click.ClickException(f"/metrics did not start listening on {address} within 30s")
    print(f"dvp controller: metrics at https://{server.host}:{server.port}/metrics", flush=True)
