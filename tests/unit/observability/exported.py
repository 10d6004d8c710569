"""Which metric names our components export, found by running them: the registered metrics
plus every family each scrape-time collector returns (fed with small fakes), so a rule or a
dashboard that reads a metric nobody exports fails its test. And the metric names a PromQL
expression reads."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from controlplane.common.metrics import REGISTRY, Family

_KEYWORDS = {"and", "or", "unless", "by", "on", "without", "ignoring", "group_left", "group_right", "bool", "offset",
             "inf", "nan"}


def _names(fam: Family) -> set[str]:
    if fam.type == "histogram":
        return {fam.name, *(fam.name + s for s in ("_bucket", "_sum", "_count"))}
    return {fam.name}


def exported_metrics() -> set[str]:
    import controlplane.apiserver.metrics as api_metrics
    import controlplane.common.kube.metrics  # noqa: F401 - registers the runtime's metrics
    from controlplane.apiserver import state_metrics
    from controlplane.apiserver.storage import Store
    from controlplane.controllers import metrics as ctl_metrics
    from controlplane.dvcr import metrics as dvcr_metrics
    from controlplane.nodehandler.metrics import NodeMetrics
    from tests.unit.observability.test_node_metrics import STATS, _ctx, _proc

    names: set[str] = set()
    for metric in REGISTRY._metrics.values():
        names |= _names(Family(metric.name, metric.type, ""))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Store(root / "state.db")
        families: list[Family] = [
            *api_metrics.collector(store, SimpleNamespace(_watchers={}))(),  # type: ignore[arg-type]
            *state_metrics.collect(store),
            *dvcr_metrics.collect(root),
            *NodeMetrics(_ctx([("dvp-team_vm-1", STATS)], []), proc=_proc(root, 1)).collect(),
        ]
        informers: dict[Any, Any] = {res: SimpleNamespace(list=lambda: []) for res, _k, _p in ctl_metrics._PHASES}
        families += ctl_metrics.collector(SimpleNamespace(informers=informers))  # type: ignore[arg-type]
        store._conn.close()
        store._executor.shutdown()
    for fam in families:
        names |= _names(fam)
    return names


def metrics_in(expr: str) -> set[str]:
    """Metric names an expression reads (label matchers, grouping labels, strings and ranges left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    found = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text):
        word = m.group(1)
        if word.lower() not in _KEYWORDS and not re.fullmatch(r"\d+[smhdwy]", word):
            found.add(word)
    return found
