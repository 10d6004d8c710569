"""Rules of the install config that span fields, checked once its structure is valid:
overlapping networks, unique hosts, the master count each target needs, fields that only
`dkp` uses, a Prometheus rules directory outside the platform's own, known check names, and secrets and key files that can actually be read.

Each rule reports a `ConfigIssue` at the field it is about, so users see file:line:column.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from installer import hostlayout
from installer.config.errors import ConfigIssue, Loc
from installer.config.models import InstallConfig
from installer.config.secrets import SecretError, SecretRef
from installer.config.types import IPNetwork
from installer.config.yamlpos import Document


def semantic_issues(
    config: InstallConfig,
    doc: Document,
    *,
    known_checks: Collection[str] | None = None,
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> list[ConfigIssue]:
    env = dict(os.environ if environ is None else environ)
    issues: list[ConfigIssue] = []
    issues += _overlapping_networks(config, doc)
    issues += _hosts(config, doc)
    issues += _dkp_only(config, doc)
    issues += _rules_dir(config, doc)
    if known_checks is not None:
        issues += _check_names(config, doc, known_checks)
    if check_files:
        issues += _secrets(config, doc, env)
        issues += _key_files(config, doc)
    return issues


def _networks(config: InstallConfig) -> list[tuple[Loc, IPNetwork]]:
    out: list[tuple[Loc, IPNetwork]] = [
        (("cluster", "podSubnetCIDR"), config.cluster.pod_subnet_cidr),
        (("cluster", "serviceSubnetCIDR"), config.cluster.service_subnet_cidr),
    ]
    out += [
        (("cluster", "internalNetworkCIDRs", i), net)
        for i, net in enumerate(config.cluster.internal_network_cidrs)
    ]
    out += [
        (("virtualization", "virtualMachineCIDRs", i), net)
        for i, net in enumerate(config.virtualization.virtual_machine_cidrs)
    ]
    return out


def _overlapping_networks(config: InstallConfig, doc: Document) -> Iterator[ConfigIssue]:
    from installer.config.errors import format_path

    nets = _networks(config)
    for j, (loc_b, net_b) in enumerate(nets):
        for loc_a, net_a in nets[:j]:
            if net_a.version == net_b.version and net_a.overlaps(net_b):
                yield doc.issue(loc_b, f"{net_b} overlaps {format_path(loc_a)} ({net_a})")


def _hosts(config: InstallConfig, doc: Document) -> Iterator[ConfigIssue]:
    names: dict[str, int] = {}
    endpoints: dict[tuple[str, int], int] = {}
    for i, host in enumerate(config.hosts):
        name = host.display_name
        if name in names:
            field = "name" if host.name else "address"
            yield doc.issue(("hosts", i, field), f'"{name}" is already used by hosts[{names[name]}]')
        names.setdefault(name, i)
        port = (host.ssh.port if host.ssh and host.ssh.port else None) or config.ssh.port
        key = (host.address.lower(), 0 if host.is_local else port)
        if key in endpoints and host.name:
            yield doc.issue(
                ("hosts", i, "address"),
                f'"{host.address}" is already the address of hosts[{endpoints[key]}]',
            )
        endpoints.setdefault(key, i)
    masters = [i for i, h in enumerate(config.hosts) if h.role == "master"]
    if config.target == "embedded" and len(masters) > 1:
        yield doc.issue(
            ("hosts", masters[1], "role"),
            f"target embedded runs one API server: exactly one host may be master "
            f"(hosts[{masters[0]}] already is)",
        )
    if not masters:
        yield doc.issue(("hosts",), "no host has role master; one is needed for the API server")


def _dkp_only(config: InstallConfig, doc: Document) -> Iterator[ConfigIssue]:
    if config.target == "dkp":
        return
    aliases = {"kubernetes_version": "kubernetesVersion", "release_channel": "releaseChannel", "registry": "registry"}
    for field, alias in aliases.items():
        if field in config.cluster.model_fields_set:
            yield doc.issue(("cluster", alias), "only used with target: dkp (target is embedded)")


_PLATFORM_DIRS = tuple(Path(d) for d in (hostlayout.CONFIG_DIR, hostlayout.STATE_DIR, hostlayout.RUN_DIR,
                                         hostlayout.LOG_DIR, hostlayout.BIN_DIR))


def _rules_dir(config: InstallConfig, doc: Document) -> Iterator[ConfigIssue]:
    path = config.monitoring.prometheus_rules_dir
    if path is None:
        return
    loc = ("monitoring", "prometheusRulesDir")
    if config.target != "embedded":
        yield doc.issue(loc, "only used with target: embedded (on dkp, DVP's virtualization module brings its "
                             "own alert rules)")
    elif path == Path("/") or any(path == p or p in path.parents for p in _PLATFORM_DIRS):
        yield doc.issue(loc, f'"{path}" is not a Prometheus rules directory: it is / or inside the platform\'s own '
                             f"directories ({', '.join(str(p) for p in _PLATFORM_DIRS)})")


def _check_names(config: InstallConfig, doc: Document, known: Collection[str]) -> Iterator[ConfigIssue]:
    for i, name in enumerate(config.checks.skip):
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            yield doc.issue(("checks", "skip", i), f'unknown check "{name}"{hint}; `dvp check --list` lists them')


def _secret_refs(config: InstallConfig) -> Iterator[tuple[Loc, SecretRef]]:
    ssh = config.ssh
    for name, alias in (("password", "password"), ("sudo_password", "sudoPassword"), ("private_key_passphrase", "privateKeyPassphrase")):
        ref = getattr(ssh, name)
        if ref is not None:
            yield ("ssh", alias), ref
    if ssh.bastion and ssh.bastion.password:
        yield ("ssh", "bastion", "password"), ssh.bastion.password
    for i, host in enumerate(config.hosts):
        if host.ssh is None:
            continue
        if host.ssh.password:
            yield ("hosts", i, "ssh", "password"), host.ssh.password
        if host.ssh.sudo_password:
            yield ("hosts", i, "ssh", "sudoPassword"), host.ssh.sudo_password
        if host.ssh.bastion and host.ssh.bastion.password:
            yield ("hosts", i, "ssh", "bastion", "password"), host.ssh.bastion.password
    if config.cluster.registry and config.cluster.registry.password:
        yield ("cluster", "registry", "password"), config.cluster.registry.password


def _secrets(config: InstallConfig, doc: Document, env: dict[str, str]) -> Iterator[ConfigIssue]:
    for loc, ref in _secret_refs(config):
        try:
            ref.resolve(environ=env)
        except SecretError as exc:
            field = "fromEnv" if ref.from_env is not None else "fromFile"
            yield doc.issue((*loc, field), str(exc))


def _key_files(config: InstallConfig, doc: Document) -> Iterator[ConfigIssue]:
    lists: list[tuple[Loc, list[Path] | None]] = [(("ssh", "privateKeyFiles"), config.ssh.private_key_files)]
    if config.ssh.bastion:
        lists.append((("ssh", "bastion", "privateKeyFiles"), config.ssh.bastion.private_key_files))
    for i, host in enumerate(config.hosts):
        if host.ssh:
            lists.append((("hosts", i, "ssh", "privateKeyFiles"), host.ssh.private_key_files))
            if host.ssh.bastion:
                lists.append((("hosts", i, "ssh", "bastion", "privateKeyFiles"), host.ssh.bastion.private_key_files))
    for loc, paths in lists:
        for j, path in enumerate(paths or []):
            if not path.is_file():
                yield doc.issue((*loc, j), f"private key file {path} does not exist")
            elif not os.access(path, os.R_OK):
                yield doc.issue((*loc, j), f"private key file {path} is not readable")
