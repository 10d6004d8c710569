"""Printer-column JSONPath and the Table rendering kubectl shows."""

from __future__ import annotations

import datetime as dt

import pytest

from controlplane.apiserver import jsonpath, tables
from controlplane.apiserver.resources import Column, ResourceInfo

VM = {
    "metadata": {"name": "vm", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"a.b/c": "x"}},
    "spec": {"cpu": {"cores": 2}, "disks": [{"name": "d1"}, {"name": "d2"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"},
                                                  {"type": "AgentReady", "status": "False"}]},
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (".status.phase", ["Running"]),
        (".spec.cpu.cores", [2]),
        (".spec.disks[1].name", ["d2"]),
        (".spec.disks[*].name", ["d1", "d2"]),
        (".status.conditions[?(@.type=='Ready')].status", ["True"]),
        ('.status.conditions[?(@.type=="AgentReady")].status', ["False"]),
        (".metadata.labels['a.b/c']", ["x"]),
        (".metadata.labels.a\\.b/c", ["x"]),
        (".status.missing", []),
        ("{.status.phase}", ["Running"]),
    ],
    ids=str,
)
def test_jsonpath_subset(expr: str, expected: list) -> None:
    assert jsonpath.find(VM, expr) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (150, "2m30s"), (600, "10m"), (3 * 3600, "3h"),
     (3 * 3600 + 120, "3h2m"), (30 * 3600, "30h"), (50 * 3600, "2d2h"), (10 * 86400, "10d"), (800 * 86400, "2y70d")],
    ids=str,
)
def test_human_duration_matches_kubernetes(seconds: int, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_table_rows_follow_printer_columns() -> None:
    info = ResourceInfo(group="g.io", version="v1", kind="VirtualMachine", plural="virtualmachines",
                        singular="virtualmachine", namespaced=True, columns=[
                            Column("Phase", "string", ".status.phase"),
                            Column("Cores", "integer", ".spec.cpu.cores", priority=1),
                            Column("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
                            Column("Missing", "string", ".status.nodeName"),
                            Column("Age", "date", ".metadata.creationTimestamp")])
    out = tables.table(info, [VM], version="v1", include="Metadata")
    assert [c["name"] for c in out["columnDefinitions"]] == ["Name", "Phase", "Cores", "Ready", "Missing", "Age"]
    assert out["columnDefinitions"][2]["priority"] == 1
    cells = out["rows"][0]["cells"]
    assert cells[:5] == ["vm", "Running", 2, "True", None]
    age = (dt.datetime.now(dt.UTC) - dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).total_seconds()
    assert cells[5] == tables.human_duration(age)
    assert out["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_table_accept_header_detection() -> None:
    kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    assert tables.wants_table(kubectl)
    assert tables.table_version(kubectl) == "v1"
    assert not tables.wants_table("application/json")
