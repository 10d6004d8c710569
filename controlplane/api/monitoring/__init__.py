"""Monitoring shipped with the binary: the Prometheus alert rules (`rules/dvp.rules.yaml`,
DVP's alerts that apply to this platform, over the metrics its components export) and the
Grafana dashboards (`dashboards/*.json`: cluster, node, VM). Read as package data, so they
are inside the single executable too (build.spec bundles every non-Python file)."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable


def rules() -> Traversable:
    return resources.files(__name__) / "rules" / "dvp.rules.yaml"


def dashboards() -> list[Traversable]:
    folder = resources.files(__name__) / "dashboards"
    return sorted((f for f in folder.iterdir() if f.name.endswith(".json")), key=lambda f: f.name)
