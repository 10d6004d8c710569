"""The shipped Grafana dashboards (cluster, node, VM): valid JSON, every panel query parses
with promtool (Grafana's variables filled in), and every metric a query or a variable reads is
one our components export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.api import monitoring
from tests.unit.observability.exported import exported_metrics, metrics_in

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
DASHBOARDS = {f.name: json.loads(f.read_text()) for f in monitoring.dashboards()}


def _queries(dash: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def _filled(expr: str) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: "5m" if m.group(1) == "__rate_interval" else "x", expr)


def test_there_is_a_cluster_a_node_and_a_vm_dashboard() -> None:
    assert set(DASHBOARDS) == {"dvp-cluster.json", "dvp-node.json", "dvp-virtualmachine.json"}
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_query_parses_with_promtool(name: str, tmp_path: Path) -> None:
    queries = _queries(DASHBOARDS[name])
    assert queries
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": _filled(q)} for i, q in enumerate(queries)]}]}
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_metric_used_is_exported(name: str) -> None:
    dash = DASHBOARDS[name]
    used: set[str] = set()
    for q in _queries(dash):
        used |= metrics_in(_filled(q))
    for var in dash["templating"]["list"]:
        if var.get("type") == "query":
            m = re.fullmatch(r"label_values\((\w+)(\{[^}]*\})?,\s*\w+\)", var["query"]["query"])
            assert m, f"variable {var['name']}: unexpected query {var['query']['query']}"
            used.add(m.group(1))
    missing = used - exported_metrics()
    assert not missing, f"{name} reads metrics nobody exports: {sorted(missing)}"
