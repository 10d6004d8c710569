"""`dvp server`'s flags as one typed value, and the component configurations built from it.

The supervisor parses the flags once (`cmd.py`), hands the same `ServerFlags` to every
component process as JSON (`dvp __component NAME --flags JSON`), and each process builds its
own configuration with the functions here, so the supervisor and its children never disagree
on where the data lives or which port a component listens on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.common.componentstatus import status_path
from controlplane.common.cpu_share import DEFAULT_NICE

if TYPE_CHECKING:  # the supervisor imports this module: it stays light, components import theirs
    from controlplane.apiserver.server import ServerConfig
    from controlplane.controllers.settings import PlatformSettings
    from controlplane.dvcr.server import DvcrConfig
    from controlplane.nodehandler.config import AgentConfig


@dataclass(frozen=True)
class SupervisorSettings:
    """How the supervisor treats its component processes (every delay here, none in code)."""

    # seconds before the n-th restart in a row of a component that died; the last repeats
    restart_backoff: tuple[float, ...] = (0.2, 1.0, 2.0, 5.0, 10.0, 30.0)
    # a component up this long has its backoff start over
    healthy_after: float = 30.0
    # how long a component may take to report ready after it is started
    start_timeout: float = 180.0
    # how long a component may take to stop on SIGTERM before it gets SIGKILL
    stop_timeout: float = 20.0


@dataclass(frozen=True)
class ServerFlags:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    advertise_address: str = ""
    tls_san: tuple[str, ...] = ()
    watch_history: int = 50_000
    max_request_bytes: int = 3 * 1024 * 1024
    flow_seats: int = 2
    cpu_nice: int = DEFAULT_NICE
    dvcr_host: str = "127.0.0.1"
    dvcr_port: int = 5443
    vm_cidrs: tuple[str, ...] = ("10.66.0.0/16",)
    vm_ip_hold: float = 600.0
    upload_wait: float = 900.0
    node_grace: float = 40.0
    event_ttl: float = 3600.0
    operation_ttl: float = 86400.0
    mac_prefix: str = "02:d8:76"
    no_controllers: bool = False
    no_agent: bool = False
    agent_config: Path | None = None
    audit_policy_file: Path | None = None
    log_level: str = "info"
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)

    def to_json(self) -> str:
        doc = dataclasses.asdict(self)
        doc["data_dir"] = str(self.data_dir)
        for key in ("agent_config", "audit_policy_file"):
            doc[key] = str(doc[key]) if doc[key] else None
        return json.dumps(doc)

    @classmethod
    def from_json(cls, text: str) -> ServerFlags:
        doc: dict[str, Any] = json.loads(text)
        doc["data_dir"] = Path(doc["data_dir"])
        for key in ("agent_config", "audit_policy_file"):
            doc[key] = Path(doc[key]) if doc.get(key) else None
        for key in ("tls_san", "vm_cidrs"):
            doc[key] = tuple(doc[key])
        sup = doc.get("supervisor") or {}
        sup["restart_backoff"] = tuple(sup.get("restart_backoff", SupervisorSettings.restart_backoff))
        doc["supervisor"] = SupervisorSettings(**sup)
        return cls(**doc)

    @property
    def status_file(self) -> Path:
        return status_path(self.data_dir)

    @property
    def api_socket(self) -> Path:
        """The API server's Unix socket for components on this host (plain HTTP, token auth)."""
        return self.data_dir / "apiserver.sock"

    @property
    def controllers_kubeconfig(self) -> Path:
        return self.data_dir / "controllers.kubeconfig"

    @property
    def dvcr_kubeconfig(self) -> Path:
        return self.data_dir / "dvcr" / "kubeconfig"

    @property
    def agent_kubeconfig(self) -> Path:
        return self.data_dir / "agent" / "kubeconfig"

    @property
    def dvcr_info(self) -> Path:
        return self.data_dir / "dvcr.json"


def api_config(flags: ServerFlags, *, supervised: bool) -> ServerConfig:
    from controlplane.api.crds import load_crds
    from controlplane.apiserver.bodies import BodyLimits
    from controlplane.apiserver.server import ServerConfig
    from controlplane.apiserver.storage import StoreSettings
    from controlplane.common import upgradetest

    history = flags.watch_history
    return ServerConfig(data_dir=flags.data_dir, host=flags.host, port=flags.port,
                        advertise_host=flags.advertise_address, extra_sans=list(flags.tls_san),
                        crds=upgradetest.adjust_crds(load_crds()),
                        store=StoreSettings(history_events=history, compact_every=max(1, history // 10)),
                        limits=BodyLimits(max_request_bytes=flags.max_request_bytes,
                                          max_object_bytes=flags.max_request_bytes),
                        component_status_file=flags.status_file if supervised else None,
                        unix_socket=flags.api_socket if supervised else None,
                        audit_policy_file=flags.audit_policy_file,
                        finalizers_on_create=not flags.no_controllers, flow_seats=flags.flow_seats,
                        event_ttl=flags.event_ttl)


def dvcr_config(flags: ServerFlags) -> DvcrConfig:
    from controlplane.dvcr.server import DvcrConfig

    return DvcrConfig(data_dir=flags.data_dir, host=flags.dvcr_host, port=flags.dvcr_port,
                      advertise_host=flags.advertise_address, extra_sans=list(flags.tls_san),
                      ca_dir=flags.data_dir / "pki", kubeconfig=flags.dvcr_kubeconfig)


def platform_settings(flags: ServerFlags) -> PlatformSettings:
    from controlplane.controllers.settings import PlatformSettings

    return PlatformSettings(virtual_machine_cidrs=flags.vm_cidrs, ip_lease_hold_seconds=flags.vm_ip_hold,
                            upload_wait_seconds=flags.upload_wait, mac_address_prefix=flags.mac_prefix,
                            node_grace_seconds=flags.node_grace, operation_ttl_seconds=flags.operation_ttl)


def agent_config(flags: ServerFlags) -> AgentConfig:
    """The in-process node handler's settings: `--agent-config` (keys of `dvp agent --config`),
    the server's PKI, the first VM CIDR unless the file says otherwise, the kubeconfig the
    supervisor writes for it and the API server's Unix socket (the handler runs beside it)."""
    from controlplane.nodehandler.config import AgentConfig, load_config_file

    pki_dir = flags.data_dir / "pki"
    if flags.agent_config is not None:
        base = load_config_file(flags.agent_config, kubeconfig=flags.agent_kubeconfig, pki_dir=pki_dir)
    else:
        base = AgentConfig(kubeconfig=flags.agent_kubeconfig, pki_dir=pki_dir, vm_cidr=flags.vm_cidrs[0])
    return dataclasses.replace(base, node_role="control-plane", api_socket=flags.api_socket)
