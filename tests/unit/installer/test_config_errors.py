"""Broken install configs, each with the exact lines `dvp config validate` must print:
FILE:LINE:COLUMN PATH: MESSAGE, every problem at once, secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.checks.catalog import check_names
from installer.config import ConfigInvalid, load_config, parse_config

HEAD = "apiVersion: dvp.deckhouse.io/v1alpha1\nkind: InstallConfig\n"
VIRT = "virtualization:\n  virtualMachineCIDRs: [10.66.10.0/24]\n"
HOSTS = "hosts:\n  - address: 10.0.0.1\n    role: master\n"
ALLOWED_SSH = (
    "user, port, privateKeyFiles, privateKeyPassphrase, useAgent, password, sudoPassword, bastion, "
    "knownHostsFile, acceptNewHostKeys, connectTimeoutSeconds, commandTimeoutSeconds, parallelism"
)

CASES: list[tuple[str, str, list[str]]] = [
    ("yaml-indentation", HEAD + "hosts:\n  - address: 10.0.0.1\n   role: master\n",
     ["install.yaml:5:4 YAML syntax error: expected <block end>, but found '<block mapping start>' (check the indentation)"]),
    ("yaml-tab", HEAD + "hosts:\n\t- address: x\n",
     ["install.yaml:4:1 YAML syntax error: found character '\\t' that cannot start any token"]),
    ("yaml-nul", HEAD + "hosts:\n  - address: 10.0.\x000.1\n",
     ["install.yaml:4:19 YAML syntax error: the character 0x0000 is not allowed in YAML"]),
    ("no-such-user", HEAD + HOSTS + VIRT + "ssh:\n  knownHostsFile: ~nosuchuser-dvp/known_hosts\n",
     ['install.yaml:9:3 ssh.knownHostsFile: "~nosuchuser-dvp/known_hosts" starts with ~ but names no user of this '
      'machine']),
    ("not-a-mapping", "- a\n- b\n", ["install.yaml:1:1 expected a mapping (kind: InstallConfig), found a list"]),
    ("empty", "", ["install.yaml:1:1 expected a mapping (kind: InstallConfig), found an empty document"]),
    ("wrong-kind", "apiVersion: v1\nkind: Config\n" + HOSTS + VIRT,
     ['install.yaml:1:1 apiVersion: expected dvp.deckhouse.io/v1alpha1, got "v1"',
      'install.yaml:2:1 kind: expected InstallConfig, got "Config"']),
    ("bad-address", HEAD + "hosts:\n  - address: 10.0.0.1\n    role: master\n  - address: 10.0.0.2\n    role: worker\n"
     "  - address: 10.0.0.300\n    role: worker\n" + VIRT,
     ['install.yaml:8:5 hosts[2].address: "10.0.0.300" is not an IP address or host name']),
    ("unknown-field", HEAD + HOSTS + VIRT + "ssh:\n  usr: admin\n",
     [f'install.yaml:9:3 ssh.usr: unknown field (did you mean "user"?); allowed here: {ALLOWED_SSH}']),
    ("bad-role", HEAD + "hosts:\n  - address: 10.0.0.1\n    role: boss\n" + VIRT,
     ['install.yaml:5:5 hosts[0].role: expected master or worker, got "boss"']),
    ("missing-role", HEAD + "hosts:\n  - address: 10.0.0.1\n" + VIRT,
     ["install.yaml:4:5 hosts[0].role: required field is missing"]),
    ("port-range", HEAD + HOSTS + VIRT + "ssh:\n  port: 70000\n", ["install.yaml:9:3 ssh.port: must be at most 65535, got 70000"]),
    ("port-type", HEAD + HOSTS + VIRT + "ssh:\n  port: ssh\n", ['install.yaml:9:3 ssh.port: expected an integer, got "ssh"']),
    ("inline-secret", HEAD + HOSTS + VIRT + "ssh:\n  password: hunter2\n",
     ["install.yaml:9:3 ssh.password: inline secrets are not accepted; use {fromFile: PATH} or {fromEnv: NAME}"]),
    ("secret-two-sources", HEAD + HOSTS + VIRT + "ssh:\n  sudoPassword: {fromEnv: A, fromFile: /x}\n",
     ["install.yaml:9:3 ssh.sudoPassword: set exactly one of fromFile or fromEnv"]),
    ("secret-env-unset", HEAD + HOSTS + VIRT + "ssh:\n  sudoPassword: {fromEnv: DVP_TEST_UNSET_VAR}\n",
     ["install.yaml:9:18 ssh.sudoPassword.fromEnv: environment variable DVP_TEST_UNSET_VAR is not set"]),
    ("secret-file-missing", HEAD + HOSTS + VIRT + "ssh:\n  password:\n    fromFile: /nonexistent/pw\n",
     ["install.yaml:10:5 ssh.password.fromFile: file /nonexistent/pw does not exist"]),
    ("overlapping-cidrs", HEAD + HOSTS + "cluster:\n  podSubnetCIDR: 10.111.0.0/16\nvirtualization:\n  virtualMachineCIDRs:\n"
     "    - 10.66.10.0/24\n    - 10.111.128.0/24\n",
     ["install.yaml:11:7 virtualization.virtualMachineCIDRs[1]: 10.111.128.0/24 overlaps cluster.podSubnetCIDR (10.111.0.0/16)"]),
    ("internal-overlaps-service", HEAD + HOSTS + VIRT + "cluster:\n  internalNetworkCIDRs: [10.222.5.0/24]\n",
     ["install.yaml:9:26 cluster.internalNetworkCIDRs[0]: 10.222.5.0/24 overlaps cluster.serviceSubnetCIDR (10.222.0.0/16)"]),
    ("cidr-host-bits", HEAD + HOSTS + VIRT + "cluster:\n  serviceSubnetCIDR: 10.222.0.1/16\n",
     ['install.yaml:9:3 cluster.serviceSubnetCIDR: "10.222.0.1/16" has host bits set; did you mean 10.222.0.0/16?']),
    ("cidr-garbage", HEAD + HOSTS + "virtualization:\n  virtualMachineCIDRs: [10.66.10.0/33]\n",
     ['install.yaml:7:25 virtualization.virtualMachineCIDRs[0]: "10.66.10.0/33" is not a CIDR such as 10.0.0.0/24']),
    ("duplicate-host-name", HEAD + "hosts:\n  - address: 10.0.0.1\n    name: n1\n    role: master\n  - address: 10.0.0.2\n"
     "    name: n1\n    role: worker\n" + VIRT,
     ['install.yaml:8:5 hosts[1].name: "n1" is already used by hosts[0]']),
    ("two-masters-embedded", HEAD + "hosts:\n  - address: 10.0.0.1\n    role: master\n  - address: 10.0.0.2\n    role: master\n" + VIRT,
     ["install.yaml:7:5 hosts[1].role: target embedded runs one API server: exactly one host may be master (hosts[0] already is)"]),
    ("no-master", HEAD + "hosts:\n  - address: 10.0.0.1\n    role: worker\n" + VIRT,
     ["install.yaml:3:1 hosts: no host has role master; one is needed for the API server"]),
    ("dkp-only-field", HEAD + HOSTS + VIRT + "cluster:\n  releaseChannel: Stable\n",
     ["install.yaml:9:3 cluster.releaseChannel: only used with target: dkp (target is embedded)"]),
    ("kubernetes-version-float", HEAD + "target: dkp\n" + HOSTS + VIRT + "cluster:\n  kubernetesVersion: 1.30\n",
     ['install.yaml:10:3 cluster.kubernetesVersion: expected a string, got the number 1.30 (quote it: "1.30")']),
    ("skip-unknown-check", HEAD + HOSTS + VIRT + "checks:\n  skip: [virt.nestd]\n",
     ['install.yaml:9:10 checks.skip[0]: unknown check "virt.nestd" (did you mean "virt.nested"?); `dvp check --list` lists them']),
    ("bad-profile", HEAD + HOSTS + VIRT + "checks:\n  profile: prod\n",
     ['install.yaml:9:3 checks.profile: expected production or evaluation, got "prod"']),
    ("duplicate-key", HEAD + HOSTS + VIRT + "target: embedded\ntarget: dkp\n",
     ["install.yaml:9:1 target: duplicate key (an earlier value would be silently replaced)"]),
    ("host-name-label", HEAD + "hosts:\n  - address: 10.0.0.1\n    name: Master_1\n    role: master\n" + VIRT,
     ['install.yaml:5:5 hosts[0].name: "Master_1" is not a valid host name (RFC 1123 label: lower-case letters, '
      'digits and "-", at most 63 characters, starting and ending with a letter or digit)']),
    ("no-vm-cidrs", HEAD + HOSTS + "virtualization:\n  virtualMachineCIDRs: []\n",
     ["install.yaml:7:3 virtualization.virtualMachineCIDRs: needs at least 1 item"]),
    ("storage", HEAD + HOSTS + "virtualization:\n  virtualMachineCIDRs: [10.66.10.0/24]\n  dvcrStorageSize: 50GB\n"
     "  vmStorageDirectory: var/lib\n",
     ['install.yaml:8:3 virtualization.dvcrStorageSize: "50GB" is not a size such as 50Gi or 500Mi',
      'install.yaml:9:3 virtualization.vmStorageDirectory: "var/lib" is not an absolute path']),
    ("key-file-missing", HEAD + HOSTS + VIRT + "ssh:\n  privateKeyFiles: [/nonexistent/id_ed25519]\n",
     ["install.yaml:9:21 ssh.privateKeyFiles[0]: private key file /nonexistent/id_ed25519 does not exist"]),
    ("several-at-once", HEAD + "target: cloud\nhosts:\n  - address: 10.0.0.300\n    role: master\n  - address: node-2\n"
     "ssh:\n  timeout: 5\n",
     ['install.yaml:3:1 target: expected embedded or dkp, got "cloud"',
      'install.yaml:5:5 hosts[0].address: "10.0.0.300" is not an IP address or host name',
      "install.yaml:7:5 hosts[1].role: required field is missing",
      "install.yaml:9:3 ssh.timeout: unknown field; allowed here: " + ALLOWED_SSH,
      "install.yaml:1:1 virtualization: required field is missing"]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES])
def test_broken_config_reports_exact_lines(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, "install.yaml", known_checks=check_names(), environ={})
    assert [str(i) for i in info.value.issues] == sorted(expected, key=lambda s: tuple(int(x) for x in s.split(" ")[0].split(":")[1:3]))


def test_inline_secret_is_never_echoed() -> None:
    text = HEAD + HOSTS + VIRT + "ssh:\n  password: hunter2-secret\n  sudoPassword: 12345678\n"
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, "install.yaml", environ={})
    assert "hunter2-secret" not in str(info.value)
    assert "12345678" not in str(info.value)
    assert len(info.value.issues) == 2


@pytest.mark.parametrize("source", ["/dev/zero", "big"])
def test_a_file_far_larger_than_a_config_is_refused_without_reading_it_all(source: str, tmp_path: Path) -> None:
    path = Path(source)
    if source == "big":
        path = tmp_path / "install.yaml"
        path.write_text(HEAD + "# padding\n" * 120_000)
    with pytest.raises(ConfigInvalid) as err:
        load_config(path)
    assert [str(i) for i in err.value.issues] == [f"{path}:1:1 the file is larger than 1 MiB: is it the install config?"]
