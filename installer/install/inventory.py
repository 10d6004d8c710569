"""From the install config to what Ansible gets: the inventory (hosts in groups `master` and
`worker`, how to reach each), the variables the roles read (`dvp_*`, the on-host layout from
`installer.hostlayout`), and the environment (fact cache, secrets).

Nothing secret is written to disk: SSH and sudo passwords reach Ansible through environment
variables that inventory entries look up (`lookup('env', ...)`), private keys by path only.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from installer import hostlayout
from installer.config.models import Host, InstallConfig
from installer.ssh.target import SSHTarget, targets_from_config

DEFAULT_API_PORT = 6443


def layout_vars() -> dict[str, str]:
    """installer/hostlayout.py as the `dvp_layout` variable of the playbooks."""
    return {
        "binary": hostlayout.BINARY,
        "config_dir": hostlayout.CONFIG_DIR,
        "server_config": hostlayout.SERVER_CONFIG,
        "agent_config": hostlayout.AGENT_CONFIG,
        "state_dir": hostlayout.STATE_DIR,
        "server_data_dir": hostlayout.SERVER_DATA_DIR,
        "run_dir": hostlayout.RUN_DIR,
        "log_dir": hostlayout.LOG_DIR,
        "admin_kubeconfig": hostlayout.ADMIN_KUBECONFIG,
    }


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def api_address(host: Host) -> str:
    """The address the API server advertises (kubeconfig, certificate, worker join)."""
    return "127.0.0.1" if host.is_local else host.address


def masters(config: InstallConfig) -> list[Host]:
    return [h for h in config.hosts if h.role == "master"]


def _env_name(kind: str, index: int) -> str:
    return f"DVP_ANSIBLE_{kind}_{index}"


def _env_lookup(name: str) -> str:
    return "{{ lookup('env', '" + name + "') }}"


def build_inventory(config: InstallConfig, *, accept_new_host_keys: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """The YAML inventory and the environment variables with the secrets it refers to."""
    targets = targets_from_config(config, accept_new_host_keys=accept_new_host_keys)
    groups: dict[str, dict[str, Any]] = {"master": {"hosts": {}}, "worker": {"hosts": {}}}
    env: dict[str, str] = {}
    for i, target in enumerate(targets):
        host_vars, host_env = _host_vars(target, i, config)
        groups[target.host.role]["hosts"][target.name] = host_vars
        env.update(host_env)
    return {"all": {"children": groups}}, env


def _host_vars(target: SSHTarget, index: int, config: InstallConfig) -> tuple[dict[str, Any], dict[str, str]]:
    host = target.host
    env: dict[str, str] = {}
    # the system Python: interpreter discovery may pick an unusable one first (pyenv shims, ...)
    out: dict[str, Any] = {"dvp_node_ip": host.address if _is_ip(host.address) else "",
                           "ansible_python_interpreter": "/usr/bin/python3"}
    if target.local:
        out.update({"ansible_connection": "local", "dvp_node_ip": ""})
    else:
        ep = target.endpoint
        out.update({"ansible_host": ep.address, "ansible_port": ep.port, "ansible_user": ep.user})
        if ep.key_files:
            out["ansible_ssh_private_key_file"] = str(ep.key_files[0])
        ssh_args = [f"-o UserKnownHostsFile={target.known_hosts}",
                    "-o StrictHostKeyChecking=" + ("accept-new" if target.accept_new_host_keys else "yes"),
                    f"-o ConnectTimeout={int(target.connect_timeout)}"]
        if ep.password is not None:
            env[_env_name("PASSWORD", index)] = ep.password.reveal()
            out["ansible_password"] = _env_lookup(_env_name("PASSWORD", index))
            out["ansible_connection"] = "paramiko"
        else:
            ssh_args.append("-o BatchMode=yes")
        if target.bastion is not None:
            b = target.bastion
            ssh_args.append(f"-o ProxyJump={b.user}@{b.address}:{b.port}")
        out["ansible_ssh_common_args"] = " ".join(ssh_args)
    if target.sudo_password is not None:
        env[_env_name("BECOME", index)] = target.sudo_password.reveal()
        out["ansible_become_password"] = _env_lookup(_env_name("BECOME", index))
    return out, env


def playbook_vars(config: InstallConfig, *, binary: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Variables every play reads (no secrets)."""
    first_master = masters(config)[0] if masters(config) else config.hosts[0]
    address = api_address(first_master)
    sans = sorted({address, first_master.display_name} - {""})
    return {
        "dvp_target": config.target,
        "dvp_binary_src": str(binary),
        "dvp_layout": layout_vars(),
        "dvp_api_address": address,
        "dvp_api_port": DEFAULT_API_PORT,
        "dvp_tls_sans": sans,
        "dvp_vm_cidrs": [str(n) for n in config.virtualization.virtual_machine_cidrs],
        "dvp_vm_storage_dir": str(config.virtualization.vm_storage_directory),
        "dvp_dvcr_storage_size": config.virtualization.dvcr_storage_size,
        "dvp_prometheus_rules_dir": str(config.monitoring.prometheus_rules_dir or ""),
        **(extra or {}),
    }


def ansible_env(*, facts_dir: Path, secrets: dict[str, str], control_dir: Path | None = None) -> dict[str, str]:
    """Environment of ansible-playbook: the preflight's facts as the fact cache (`gathering =
    smart` uses them instead of running setup), quiet deprecation noise, secrets; SSH control
    sockets in `control_dir` (closed after the phase, installer/install/interrupt.py). Files
    reach hosts `piped` (`dd` over the shared SSH connection): it needs no SFTP subsystem, and
    the default `smart` would first try SFTP and scp, two failed round trips per file on hosts
    without one."""
    return {
        **({"ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir)} if control_dir is not None else {}),
        "ANSIBLE_CACHE_PLUGIN": "jsonfile",
        "ANSIBLE_CACHE_PLUGIN_TIMEOUT": str(7 * 24 * 3600),
        "ANSIBLE_GATHERING": "smart",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SYSTEM_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_TRANSFER_METHOD": "piped",
        "ANSIBLE_FORKS": "16",
        **secrets,
    }
