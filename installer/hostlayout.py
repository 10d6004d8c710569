"""Where the platform lives on an installed host: the one contract between the install
playbooks (`playbooks/`), `dvp install` and `dvp upgrade`.

The playbooks write exactly these paths and services; the upgrade reads, backs up and
replaces them; the tests assert them. A change here is a change of the on-host layout and
needs an upgrade step for installed hosts.

Services are `dvp-server` (the embedded control plane, on master hosts) and `dvp-agent`
(the node handler, on worker hosts; a one-host install runs the agent inside the server).
Where PID 1 is systemd each is a unit under /etc/systemd/system; otherwise an LSB script
under /etc/init.d driving start-stop-daemon with a PID file. `service_command()` gives the
command that works in both cases.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

ServiceName = Literal["dvp-server", "dvp-agent"]
ServiceAction = Literal["start", "stop", "restart", "status"]

BIN_DIR = "/usr/local/bin"
BINARY = f"{BIN_DIR}/dvp"  # the running version
BINARY_PREVIOUS = f"{BIN_DIR}/dvp.previous"  # kept by the upgrade for rollback
CONFIG_DIR = "/etc/dvp"
SERVER_CONFIG = f"{CONFIG_DIR}/server.yaml"  # flags of `dvp server`, as YAML keys
AGENT_CONFIG = f"{CONFIG_DIR}/agent.yaml"  # flags of `dvp agent`, as YAML keys
STATE_DIR = "/var/lib/dvp"  # agent state: volumes, image cache, seeds (vmStorageDir default)
SERVER_DATA_DIR = f"{STATE_DIR}/server"  # datastore (SQLite), PKI, tokens, kubeconfig, DVCR
BACKUP_DIR = f"{STATE_DIR}/backups"  # datastore backups taken by the upgrade
RUN_DIR = "/run/dvp"  # PID files and sockets
LOG_DIR = "/var/log/dvp"  # service logs when not under systemd (journal otherwise)
ADMIN_KUBECONFIG = f"{SERVER_DATA_DIR}/kubeconfig"
QEMU_MIGRATION_PKI = "/etc/pki/qemu/dvp-migration"
"""QEMU's certificates for the migration stream (qemu.conf `migrate_tls_x509_cert_dir`): under
/etc/pki/qemu, which libvirt's AppArmor profile for QEMU lets it read, in a directory of its own
so an administrator's /etc/pki/qemu files are left alone; the node handler's
`Layout.qemu_migration_pki`."""


@dataclass(frozen=True)
class ServicePaths:
    """The files of one service on a host."""

    name: ServiceName
    pid_file: str
    log_file: str
    init_script: str
    systemd_unit: str


def service_paths(name: ServiceName) -> ServicePaths:
    """The PID file, log file and unit/script paths of a service."""
    return ServicePaths(
        name=name,
        pid_file=f"{RUN_DIR}/{name}.pid",
        log_file=f"{LOG_DIR}/{name}.log",
        init_script=f"/etc/init.d/{name}",
        systemd_unit=f"/etc/systemd/system/{name}.service",
    )


def service_command(name: ServiceName, action: ServiceAction) -> str:
    """A shell command that runs `action` on the service whether or not systemd is PID 1."""
    paths = service_paths(name)
    unit = shlex.quote(name)
    script = shlex.quote(paths.init_script)
    return (
        f"if [ -d /run/systemd/system ]; then systemctl {action} {unit}; "
        f"else {script} {action}; fi"
    )
