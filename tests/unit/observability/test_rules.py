"""The shipped alert rules with Prometheus' own tool: `promtool check rules` accepts them, and
`promtool test rules` (dvp_rules_test.yaml) fires each alert on synthetic series that show
its problem and keeps it silent on healthy ones. Every metric the rules read is one our
components export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from controlplane.api import monitoring

HERE = Path(__file__).parent
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _rules_text() -> str:
    return monitoring.rules().read_text()


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "dvp.rules.yaml"
    path.write_text(_rules_text())
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_each_alert_fires_on_its_problem_and_only_then(tmp_path: Path) -> None:
    doc = yaml.safe_load(_rules_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "dvp.rules.yaml").write_text(yaml.safe_dump(doc))
    shutil.copy(HERE / "dvp_rules_test.yaml", tmp_path / "dvp_rules_test.yaml")
    result = subprocess.run([PROMTOOL, "test", "rules", str(tmp_path / "dvp_rules_test.yaml")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (HERE / "dvp_rules_test.yaml").read_text()))
    shipped = {rule["alert"] for group in doc["groups"] for rule in group["rules"]}
    assert shipped <= tested, f"alerts without a unit test: {sorted(shipped - tested)}"


def test_rules_read_only_exported_metrics() -> None:
    from tests.unit.observability.exported import exported_metrics, metrics_in

    doc = yaml.safe_load(_rules_text())
    used = set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            used |= metrics_in(rule["expr"])
    assert used, "no metric found in the rules"
    assert used <= exported_metrics(), f"rules read metrics nobody exports: {sorted(used - exported_metrics())}"


def test_dvp_monitoring_prints_what_is_shipped() -> None:
    from click.testing import CliRunner

    from controlplane.embedded.monitoring_cmd import monitoring as cmd

    runner = CliRunner()
    assert runner.invoke(cmd, ["rules"]).output == _rules_text()
    assert runner.invoke(cmd, ["dashboard"]).output.split() == ["cluster", "node", "virtualmachine"]
    node = json.loads(runner.invoke(cmd, ["dashboard", "node"]).output)
    assert node["uid"] == "dvp-node"
    bad = runner.invoke(cmd, ["dashboard", "nope"])
    assert bad.exit_code == 2 and "there are: cluster, node, virtualmachine" in bad.output
