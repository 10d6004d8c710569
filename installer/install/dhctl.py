"""The `dkp` target's bootstrap input: dhctl's configuration documents, generated from the
install config.

`config.yml` holds ClusterConfiguration (static cluster, networks, Kubernetes version),
InitConfiguration (the registry DKP's images come from), StaticClusterConfiguration
(internal networks), and ModuleConfigs: `deckhouse` (bundle, release channel), `global`
(public domain template) and `virtualization` (enabled, DVCR storage size,
virtualMachineCIDRs). `connection.yml` holds SSHConfig (user, port, keys, bastion, sudo
password) and one SSHHost per master — it carries secrets, so it is written 0600 and never
logged. The dkp_bootstrap role runs `dhctl bootstrap --config --connection-config` with them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml

from installer.config.models import InstallConfig

DECKHOUSE_V1 = "deckhouse.io/v1"
MODULE_CONFIG_API = "deckhouse.io/v1alpha1"
DHCTL_API = "dhctl.deckhouse.io/v1"
DEFAULT_REGISTRY = "registry.deckhouse.io/deckhouse/ce"


def _docker_cfg(config: InstallConfig) -> str:
    """InitConfiguration.deckhouse.registryDockerCfg: base64 of a Docker config.json."""
    reg = config.cluster.registry
    if reg is None or reg.username is None:
        return base64.b64encode(json.dumps({"auths": {}}).encode()).decode()
    host = reg.address.split("/", 1)[0]
    password = reg.password.resolve().reveal() if reg.password is not None else ""
    auth = base64.b64encode(f"{reg.username}:{password}".encode()).decode()
    return base64.b64encode(json.dumps({"auths": {host: {"auth": auth}}}).encode()).decode()


def cluster_documents(config: InstallConfig) -> list[dict[str, Any]]:
    c = config.cluster
    registry = c.registry.address if c.registry is not None else DEFAULT_REGISTRY
    internal = [str(n) for n in c.internal_network_cidrs] or [
        f"{h.address}/32" for h in config.hosts if not h.is_local]
    return [
        {"apiVersion": DECKHOUSE_V1, "kind": "ClusterConfiguration", "clusterType": "Static",
         "podSubnetCIDR": str(c.pod_subnet_cidr), "serviceSubnetCIDR": str(c.service_subnet_cidr),
         "kubernetesVersion": c.kubernetes_version, "clusterDomain": c.cluster_domain},
        {"apiVersion": DECKHOUSE_V1, "kind": "InitConfiguration",
         "deckhouse": {"imagesRepo": registry, "registryDockerCfg": _docker_cfg(config)}},
        {"apiVersion": DECKHOUSE_V1, "kind": "StaticClusterConfiguration", "internalNetworkCIDRs": internal},
        {"apiVersion": MODULE_CONFIG_API, "kind": "ModuleConfig", "metadata": {"name": "deckhouse"},
         "spec": {"version": 1, "enabled": True, "settings": {"bundle": "Default", "releaseChannel": c.release_channel}}},
        {"apiVersion": MODULE_CONFIG_API, "kind": "ModuleConfig", "metadata": {"name": "global"},
         "spec": {"version": 2, "settings": {"modules": {"publicDomainTemplate": "%s.dvp.internal"}}}},
        {"apiVersion": MODULE_CONFIG_API, "kind": "ModuleConfig", "metadata": {"name": "virtualization"},
         "spec": {"version": 1, "enabled": True, "settings": {
             "dvcr": {"storage": {"type": "PersistentVolumeClaim",
                                  "persistentVolumeClaim": {"size": config.virtualization.dvcr_storage_size}}},
             "virtualMachineCIDRs": [str(n) for n in config.virtualization.virtual_machine_cidrs]}}},
    ]


def connection_documents(config: InstallConfig) -> list[dict[str, Any]]:
    ssh = config.ssh
    keys = []
    for path in ssh.private_key_files:
        entry: dict[str, Any] = {"key": Path(path).expanduser().read_text()}
        if ssh.private_key_passphrase is not None:
            entry["passphrase"] = ssh.private_key_passphrase.resolve().reveal()
        keys.append(entry)
    doc: dict[str, Any] = {"apiVersion": DHCTL_API, "kind": "SSHConfig", "sshUser": ssh.user, "sshPort": ssh.port,
                           "sshAgentPrivateKeys": keys}
    if ssh.sudo_password is not None:
        doc["sudoPassword"] = ssh.sudo_password.resolve().reveal()
    if ssh.bastion is not None:
        doc.update({"sshBastionHost": ssh.bastion.address, "sshBastionPort": ssh.bastion.port,
                    "sshBastionUser": ssh.bastion.user or ssh.user})
    hosts = [{"apiVersion": DHCTL_API, "kind": "SSHHost", "host": h.address} for h in config.hosts if h.role == "master"]
    return [doc, *hosts]


def dump_documents(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def write_documents(config: InstallConfig, directory: Path) -> tuple[Path, Path]:
    """config.yml and connection.yml (0600) for `dhctl bootstrap`."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    out = []
    for name, docs in (("config.yml", cluster_documents(config)), ("connection.yml", connection_documents(config))):
        path = directory / name
        tmp = path.with_name(name + ".tmp")
        tmp.write_text(dump_documents(docs))
        tmp.chmod(0o600)
        tmp.replace(path)
        out.append(path)
    return out[0], out[1]
