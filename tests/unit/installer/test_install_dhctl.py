"""dhctl documents generated from a sample dkp config carry every field DKP requires for a
static cluster (ClusterConfiguration, InitConfiguration, StaticClusterConfiguration, SSHConfig,
SSHHost) and the virtualization ModuleConfig (DVCR storage, virtualMachineCIDRs)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from installer.config import parse_config
from installer.install.dhctl import cluster_documents, connection_documents, write_documents


@pytest.fixture
def dkp_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    monkeypatch.setenv("DVP_REGISTRY_PASSWORD", "s3cret-license")
    return parse_config(f"""apiVersion: dvp.deckhouse.io/v1alpha1
kind: InstallConfig
target: dkp
ssh:
  user: ubuntu
  port: 2222
  privateKeyFiles: [{key}]
  bastion: {{address: 10.0.0.1, user: jump}}
hosts:
  - {{address: 192.168.10.11, role: master}}
  - {{address: 192.168.10.12, role: worker}}
cluster:
  podSubnetCIDR: 10.111.0.0/16
  serviceSubnetCIDR: 10.222.0.0/16
  internalNetworkCIDRs: [192.168.10.0/24]
  kubernetesVersion: "1.29"
  releaseChannel: EarlyAccess
  registry:
    address: registry.deckhouse.io/deckhouse/ee
    username: license-token
    password: {{fromEnv: DVP_REGISTRY_PASSWORD}}
virtualization:
  virtualMachineCIDRs: [10.66.10.0/24, 10.66.20.0/24]
  dvcrStorageSize: 60Gi
""", check_files=False)


def _by_kind(docs: list[dict], kind: str, name: str | None = None) -> dict:  # type: ignore[type-arg]
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} documents"
    return found[0]


def test_cluster_documents_have_the_required_fields(dkp_config) -> None:  # type: ignore[no-untyped-def]
    docs = cluster_documents(dkp_config)
    cc = _by_kind(docs, "ClusterConfiguration")
    assert cc["apiVersion"] == "deckhouse.io/v1"
    assert cc["clusterType"] == "Static"
    assert cc["podSubnetCIDR"] == "10.111.0.0/16" and cc["serviceSubnetCIDR"] == "10.222.0.0/16"
    assert cc["kubernetesVersion"] == "1.29" and cc["clusterDomain"] == "cluster.local"
    init = _by_kind(docs, "InitConfiguration")["deckhouse"]
    assert init["imagesRepo"] == "registry.deckhouse.io/deckhouse/ee"
    auths = json.loads(base64.b64decode(init["registryDockerCfg"]))["auths"]
    assert base64.b64decode(auths["registry.deckhouse.io"]["auth"]).decode() == "license-token:s3cret-license"
    assert _by_kind(docs, "StaticClusterConfiguration")["internalNetworkCIDRs"] == ["192.168.10.0/24"]
    deckhouse = _by_kind(docs, "ModuleConfig", "deckhouse")["spec"]
    assert deckhouse["settings"]["releaseChannel"] == "EarlyAccess" and deckhouse["version"] == 1
    assert _by_kind(docs, "ModuleConfig", "global")["spec"]["settings"]["modules"]["publicDomainTemplate"].startswith("%s.")
    virt = _by_kind(docs, "ModuleConfig", "virtualization")
    assert virt["apiVersion"] == "deckhouse.io/v1alpha1"
    assert virt["spec"]["enabled"] is True and virt["spec"]["version"] == 1
    settings = virt["spec"]["settings"]
    assert settings["virtualMachineCIDRs"] == ["10.66.10.0/24", "10.66.20.0/24"]
    assert settings["dvcr"]["storage"] == {"type": "PersistentVolumeClaim", "persistentVolumeClaim": {"size": "60Gi"}}


def test_connection_documents(dkp_config) -> None:  # type: ignore[no-untyped-def]
    docs = connection_documents(dkp_config)
    ssh = _by_kind(docs, "SSHConfig")
    assert ssh["apiVersion"] == "dhctl.deckhouse.io/v1"
    assert ssh["sshUser"] == "ubuntu" and ssh["sshPort"] == 2222
    assert len(ssh["sshAgentPrivateKeys"]) == 1 and "PRIVATE KEY" in ssh["sshAgentPrivateKeys"][0]["key"]
    assert (ssh["sshBastionHost"], ssh["sshBastionUser"], ssh["sshBastionPort"]) == ("10.0.0.1", "jump", 22)
    hosts = [d for d in docs if d["kind"] == "SSHHost"]
    assert [h["host"] for h in hosts] == ["192.168.10.11"]  # dhctl bootstraps the first master


def test_written_documents_are_private_yaml_streams(dkp_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config_file, connection_file = write_documents(dkp_config, tmp_path / "dkp")
    for path in (config_file, connection_file):
        assert path.stat().st_mode & 0o077 == 0
        assert all(d["apiVersion"] and d["kind"] for d in yaml.safe_load_all(path.read_text()))
    assert "s3cret" not in config_file.read_text()  # only inside the base64 docker config
