"""`dvp server`: the embedded control plane's command line (flags into typed configs)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from controlplane.embedded.config import ServerFlags

from controlplane.common import cpu_share
from controlplane.common.cpu_share import DEFAULT_NICE, MAX_NICE, MIN_NICE
from controlplane.common.hostport import check_host, split_host_port
from controlplane.common.logs import setup_logging
from controlplane.controllers.cli_options import platform_options


def _split_listen(value: str, option: str = "--listen") -> tuple[str, int]:
    try:
        return split_host_port(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (e.g. 127.0.0.1:6443)", param_hint=option) from None


def _hosts(option: str, values: tuple[str, ...], *, wildcard: bool = False) -> tuple[str, ...]:
    try:
        return tuple(check_host(v, wildcard=wildcard) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _cidrs(values: tuple[str, ...]) -> tuple[str, ...]:
    from controlplane.controllers.settings import parse_cidrs

    try:
        return parse_cidrs(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--vm-cidr") from exc


def _mac_prefix(value: str) -> str:
    from controlplane.controllers.settings import parse_mac_prefix

    try:
        return parse_mac_prefix(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mac-prefix") from exc


def _load_config_file(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """`--config FILE`: YAML whose keys are this command's flags (`data-dir`, `vm-cidr`: [..]);
    they become the defaults, so flags given on the command line win."""
    if value is None:
        return None
    import yaml

    try:
        doc = yaml.safe_load(value.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"{value}: cannot read the server configuration: {exc}", param_hint="--config") from exc
    if not isinstance(doc, dict):
        raise click.BadParameter(f"{value}: expected a mapping of settings", param_hint="--config")
    assert isinstance(ctx.command, click.Command)
    params = {p.name: p for p in ctx.command.params if isinstance(p, click.Option) and p.name != "config_file"}
    defaults: dict[str, object] = {}
    for key, item in doc.items():
        name = str(key).replace("-", "_")
        if name == "vm_cidr":
            name = "vm_cidrs"
        param = params.get(name)
        if param is None:
            known = ", ".join(sorted(o.opts[0].lstrip("-") for o in params.values()))
            raise click.BadParameter(f"{value}: {key}: unknown setting (known: {known})", param_hint="--config")
        if param.multiple and not isinstance(item, list):
            item = [item]
        defaults[name] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


@click.command("server")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              is_eager=True, expose_value=False, callback=_load_config_file,
              help="YAML file with these settings (keys as the flags, e.g. data-dir); flags win.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/dvp/server"), show_default=True,
              help="Where the datastore, certificates, tokens and kubeconfig live.")
@click.option("--listen", default="127.0.0.1:6443", show_default=True,
              help="HOST:PORT of the HTTPS API (port 0 picks a free one; the kubeconfig records it).")
@click.option("--advertise-address", default="", help="Host name or IP written into the kubeconfig.")
@click.option("--tls-san", multiple=True, help="Extra name or IP for the serving certificate (repeatable).")
@click.option("--watch-history", default=50_000, show_default=True, type=click.IntRange(min=10),
              help="How many past changes watches can resume from (older ones answer 410 Gone).")
@click.option("--max-request-bytes", default=3 * 1024 * 1024, show_default=True, type=click.IntRange(min=1024),
              help="Largest request body the API accepts (larger ones answer 413); also the largest stored object.")
@click.option("--flow-seats", default=2, show_default=True, type=click.IntRange(min=0),
              help="API priority and fairness: requests served at a time, the others queued per priority "
                   "level and user and served in turn (0: off, every request in arrival order).")
@click.option("--cpu-nice", default=DEFAULT_NICE, show_default=True, type=click.IntRange(MIN_NICE, MAX_NICE),
              help="Nice value of the server's processes and of their CPU groups, so guests that keep every "
                   "core busy do not starve the control plane (0: leave it as started).")
@click.option("--dvcr-listen", default="127.0.0.1:5443", show_default=True,
              help="HOST:PORT of DVCR, the VM image registry (HTTPS; port 0 picks a free one; DATA_DIR/dvcr.json "
                   "records it).")
@platform_options
@click.option("--event-ttl", default=3600.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds an Event is kept after its last write (kube-apiserver's --event-ttl).")
@click.option("--no-controllers", is_flag=True, help="Serve the API and DVCR only (controllers run elsewhere).")
@click.option("--no-agent", is_flag=True, help="Do not run the node handler in-process (hosts run `dvp agent`).")
@click.option("--agent-config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Settings of the in-process node handler (YAML, the keys of `dvp agent --config`).")
@click.option("--audit-policy-file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              callback=lambda _c, _p, v: _audit_policy(v),
              help="An audit.k8s.io/v1 Policy: which requests DATA_DIR/audit.log records and at which level "
                   "(None, Metadata, Request, RequestResponse; default: every request at Metadata).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]),
              show_default=True)
def server(data_dir: Path, listen: str, advertise_address: str, tls_san: tuple[str, ...], watch_history: int,
           max_request_bytes: int, flow_seats: int, cpu_nice: int, dvcr_listen: str, vm_cidrs: tuple[str, ...], vm_ip_hold: float, upload_wait: float,
           node_grace: float, event_ttl: float, operation_ttl: float, mac_prefix: str, no_controllers: bool, no_agent: bool, agent_config: Path | None,
           audit_policy_file: Path | None, log_level: str) -> None:
    """Run the embedded control plane: the Kubernetes-compatible API server serving the
    virtualization.deckhouse.io API (SQLite under --data-dir, TLS, bearer tokens), DVCR and
    the controllers.

    On first start it creates a CA, a serving certificate and an admin token and writes
    DATA_DIR/kubeconfig; point kubectl at it with KUBECONFIG=DATA_DIR/kubeconfig.
    DVCR, the registry of VM images, listens on --dvcr-listen with a certificate from the
    same CA; DATA_DIR/dvcr.json says where, DATA_DIR/dvcr-*.json hold its users' credentials.
    For a one-host install it also runs the node handler (as `dvp agent`) unless --no-agent.

    Each component runs in a process of its own, restarted when it dies; `/readyz?verbose`
    on the API shows every component, and systemd gets READY=1 once all serve.
    """
    from controlplane.embedded.config import ServerFlags
    from controlplane.embedded.supervisor import ComponentError

    setup_logging(log_level)
    host, port = _split_listen(listen)
    dvcr_host, dvcr_port = _split_listen(dvcr_listen, "--dvcr-listen")
    if advertise_address:
        _hosts("--advertise-address", (advertise_address,))
    flags = ServerFlags(data_dir=data_dir.absolute(), host=host, port=port, advertise_address=advertise_address,
                        tls_san=_hosts("--tls-san", tls_san, wildcard=True), watch_history=watch_history,
                        max_request_bytes=max_request_bytes, flow_seats=flow_seats, cpu_nice=cpu_nice, dvcr_host=dvcr_host,
                        dvcr_port=dvcr_port, vm_cidrs=_cidrs(vm_cidrs), vm_ip_hold=vm_ip_hold,
                        upload_wait=upload_wait, node_grace=node_grace, event_ttl=event_ttl, operation_ttl=operation_ttl, mac_prefix=_mac_prefix(mac_prefix), no_controllers=no_controllers, no_agent=no_agent,
                        agent_config=agent_config.absolute() if agent_config else None,
                        audit_policy_file=audit_policy_file.absolute() if audit_policy_file else None,
                        log_level=log_level)
    try:
        run_server(flags)
    except ComponentError as exc:
        logging.getLogger("dvp").error("%s", exc)
        sys.exit(1)


def run_server(flags: ServerFlags) -> None:
    """The supervisor with one process per component, in start order."""
    from controlplane.common.eventloop import run_event_loop
    from controlplane.embedded.supervisor import Supervisor
    from controlplane.embedded.topology import component_specs

    cpu_share.claim(flags.cpu_nice)
    holder: list[Supervisor] = []
    specs = component_specs(flags, lambda: holder[0])
    holder.append(Supervisor(flags, specs))
    run_event_loop(holder[0].run())


def _audit_policy(path: Path | None) -> Path | None:
    """The policy file, checked now: a bad one is an error naming the file and the field."""
    if path is not None:
        from controlplane.apiserver.authz.audit_policy import PolicyError, load

        try:
            load(path)
        except PolicyError as exc:
            raise click.BadParameter(str(exc), param_hint="--audit-policy-file") from exc
    return path

