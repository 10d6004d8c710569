"""`dvp install --dry-run`: what the install will do on each host — packages, files written,
services started — computed from the config and the role defaults, touching nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from installer import hostlayout
from installer.config.models import InstallConfig
from installer.install import binary as binmod
from installer.install.inventory import masters

RULES_FILE = "dvp.rules.yaml"  # the monitoring_rules role's dvp_prometheus_rules_file


@dataclass
class HostPlan:
    host: str
    address: str
    role: str
    packages: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"packages: {', '.join(self.packages)}"]
        out += [f"write: {f}" for f in self.files]
        out += [f"start: {s}" for s in self.services]
        out += self.notes
        return out

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "address": self.address, "role": self.role, "packages": self.packages,
                "files": self.files, "services": self.services, "notes": self.notes}


def _role_defaults(role: str) -> dict[str, Any]:
    path = binmod.playbooks_dir() / "roles" / role / "defaults" / "main.yml"
    data = yaml.safe_load(path.read_text()) or {}
    return data if isinstance(data, dict) else {}


def plan_hosts(config: InstallConfig, *, extra_vars: dict[str, Any] | None = None) -> list[HostPlan]:
    extra = extra_vars or {}
    prep = {**_role_defaults("node_prepare"), **extra}
    packages = list(prep.get("dvp_packages", [])) + list(prep.get("dvp_extra_packages", []))
    master = (masters(config) or config.hosts[:1])[0]
    plans = []
    for host in config.hosts:
        plan = HostPlan(host.display_name, host.address, host.role, packages=packages)
        plan.files += ["/etc/modules-load.d/dvp.conf", "/etc/sysctl.d/90-dvp.conf",
                       f"{hostlayout.CONFIG_DIR}/ {hostlayout.STATE_DIR}/ {hostlayout.RUN_DIR}/ {hostlayout.LOG_DIR}/ "
                       f"{config.virtualization.vm_storage_directory}/ (directories)"]
        qemu_keys = ", ".join(str(k) for k in (prep.get("dvp_qemu_conf_no_systemd") or {}))
        if qemu_keys:
            plan.files.append(f"/etc/libvirt/qemu.conf (edited: {qemu_keys}; on hosts where systemd is not PID 1)")
        plan.services.append("libvirtd, virtlogd (if not running)")
        if config.target == "embedded":
            plan.files.append(hostlayout.BINARY)
            if host == master:
                plan.files += [hostlayout.SERVER_CONFIG, hostlayout.AGENT_CONFIG,
                               f"{hostlayout.SERVER_DATA_DIR}/ (datastore, PKI, tokens, kubeconfig; by dvp server)"]
                plan.services.append("dvp-server (API server, DVCR, controllers, node handler)")
                if config.monitoring.prometheus_rules_dir is not None:
                    plan.files.append(f"{config.monitoring.prometheus_rules_dir}/{RULES_FILE} "
                                      "(alert rules for Prometheus; reload it to pick them up)")
            else:
                plan.files += [hostlayout.AGENT_CONFIG, f"{hostlayout.CONFIG_DIR}/agent.kubeconfig",
                               f"{hostlayout.CONFIG_DIR}/agent-tls.crt, agent-tls.key"]
                plan.services.append("dvp-agent (node handler, joins the master's API with its own token)")
            plan.notes.append("service manager: systemd unit where systemd is PID 1, else /etc/init.d script")
        elif host == master:
            plan.files.append(f"{hostlayout.CONFIG_DIR}/dkp/config.yml (dhctl documents)")
            plan.services.append("dhctl bootstrap (Deckhouse Kubernetes Platform)")
        plans.append(plan)
    return plans
