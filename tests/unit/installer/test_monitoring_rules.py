"""Alert rules installed where the operator's Prometheus reads rule files: the install
config's `monitoring.prometheusRulesDir` (validated with errors naming the field), the
`--dry-run` plan listing the file, and the `monitoring_rules` role run by real
ansible-playbook on this host writing exactly what the binary ships (`dvp monitoring rules`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.api import monitoring
from installer.checks.catalog import check_names
from installer.config import ConfigInvalid, parse_config
from installer.install import engine
from installer.install.binary import playbooks_dir
from installer.install.inventory import layout_vars, playbook_vars

HEAD = "apiVersion: dvp.deckhouse.io/v1alpha1\nkind: InstallConfig\n"
HOSTS = "hosts:\n  - {address: 10.0.0.1, role: master}\n  - {address: 10.0.0.2, role: worker, name: w1}\n"
VIRT = "virtualization:\n  virtualMachineCIDRs: [10.66.10.0/24]\n"


def _parse(text: str):  # type: ignore[no-untyped-def]
    return parse_config(text, "install.yaml", known_checks=check_names(), environ={}, check_files=False)


def _issues(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        _parse(text)
    return [str(i) for i in info.value.issues]


def test_rules_dir_is_optional_and_reaches_the_playbooks() -> None:
    assert _parse(HEAD + HOSTS + VIRT).monitoring.prometheus_rules_dir is None
    config = _parse(HEAD + HOSTS + VIRT + "monitoring:\n  prometheusRulesDir: /etc/prometheus/rules.d\n")
    assert str(config.monitoring.prometheus_rules_dir) == "/etc/prometheus/rules.d"
    assert playbook_vars(config, binary=Path("/x/dvp"))["dvp_prometheus_rules_dir"] == "/etc/prometheus/rules.d"
    assert playbook_vars(_parse(HEAD + HOSTS + VIRT), binary=Path("/x/dvp"))["dvp_prometheus_rules_dir"] == ""


@pytest.mark.parametrize(("monitoring_yaml", "expected"), [
    ("monitoring:\n  prometheusRulesDir: rules.d\n",
     'install.yaml:9:3 monitoring.prometheusRulesDir: "rules.d" is not an absolute path'),
    ("monitoring:\n  prometheusRulesDir: /etc/dvp/rules\n",
     'install.yaml:9:3 monitoring.prometheusRulesDir: "/etc/dvp/rules" is not a Prometheus rules directory'),
    ("monitoring:\n  prometheusRulesDir: /\n",
     'install.yaml:9:3 monitoring.prometheusRulesDir: "/" is not a Prometheus rules directory'),
    ("monitoring:\n  rulesDir: /etc/prometheus\n",
     'install.yaml:9:3 monitoring.rulesDir: unknown field (did you mean "prometheusRulesDir"?)'),
])
def test_bad_rules_dir_names_the_field(monitoring_yaml: str, expected: str) -> None:
    issues = _issues(HEAD + HOSTS + VIRT + monitoring_yaml)
    assert len(issues) == 1 and issues[0].startswith(expected), issues


def test_rules_dir_is_embedded_only() -> None:
    issues = _issues(HEAD + "target: dkp\n" + HOSTS + VIRT + "monitoring:\n  prometheusRulesDir: /etc/prometheus/rules.d\n")
    assert any("monitoring.prometheusRulesDir: only used with target: embedded" in i for i in issues), issues


def test_dry_run_lists_the_rules_file_on_the_master_only() -> None:
    config = _parse(HEAD + HOSTS + VIRT + "monitoring:\n  prometheusRulesDir: /etc/prometheus/rules.d\n")
    master, worker = engine.plan_install(config, engine.InstallOptions())
    assert any(f.startswith("/etc/prometheus/rules.d/dvp.rules.yaml ") for f in master.files), master.files
    assert not any("rules" in f for f in worker.files)
    assert not any("dvp.rules.yaml" in f for p in engine.plan_install(_parse(HEAD + HOSTS + VIRT), engine.InstallOptions())
                   for f in p.files)


def _run_role(tmp_path: Path, rules_dir: str) -> subprocess.CompletedProcess[str]:
    dvp = Path(sys.executable).with_name("dvp")
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: master[0]\n  gather_facts: false\n  roles:\n    - role: monitoring_rules\n"
        "      when: dvp_target == 'embedded' and dvp_prometheus_rules_dir | default('', true) | length > 0\n")
    extra = {"dvp_target": "embedded", "dvp_prometheus_rules_dir": rules_dir,
             "dvp_layout": {**layout_vars(), "binary": str(dvp)}}
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(playbooks_dir() / "roles"), "ANSIBLE_LOCALHOST_WARNING": "False",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False", "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    playbook = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))
    assert playbook, "ansible-playbook is installed with the test extras"
    return subprocess.run([playbook, "-i", "master,", "-c", "local", "-e", json.dumps(extra), str(play)],
                          env=env, capture_output=True, text=True, timeout=300)


def test_role_writes_the_shipped_rules(tmp_path: Path) -> None:
    target = tmp_path / "prometheus" / "rules.d"
    done = _run_role(tmp_path, str(target))
    assert done.returncode == 0, done.stdout + done.stderr
    written = target / "dvp.rules.yaml"
    assert written.read_text() == monitoring.rules().read_text()
    assert oct(written.stat().st_mode & 0o777) == "0o644"
    # and the same again changes nothing
    again = _run_role(tmp_path, str(target))
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout


def test_role_is_skipped_without_a_rules_dir(tmp_path: Path) -> None:
    done = _run_role(tmp_path, "")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "changed=0" in done.stdout and not list(tmp_path.rglob("dvp.rules.yaml"))
