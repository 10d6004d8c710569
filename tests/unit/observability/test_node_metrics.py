"""The node handler's figures: libvirt domain statistics become DVP's VM metrics, /proc
becomes the host's use, and two samples become the usage record `kubectl top` reads."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from controlplane.api.nodemetrics import USAGE_ANNOTATION, NodeUsage, Usage
from controlplane.common.metrics import Registry
from controlplane.nodehandler.metrics import NodeMetrics, host_cpu_seconds, host_memory_working_set


class _Dom:
    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name


class _Conn:
    def __init__(self, records: list[tuple[str, dict[str, Any]]]) -> None:
        self.records = records

    def getAllDomainStats(self, _stats: int, _flags: int) -> list[tuple[_Dom, dict[str, Any]]]:  # noqa: N802
        return [(_Dom(n), s) for n, s in self.records]


def _proc(tmp_path: Path, busy: int) -> Path:
    (tmp_path / "stat").write_text(f"cpu  {busy} 0 0 1000 50 0 0 0 0 0\ncpu0 1 2 3 4\n")
    (tmp_path / "meminfo").write_text("MemTotal:       8000000 kB\nMemFree:   100 kB\nMemAvailable:   6000000 kB\n")
    return tmp_path


def _ctx(records: list[tuple[str, dict[str, Any]]], patches: list[Any]) -> Any:
    conn = _Conn(records)
    return SimpleNamespace(
        node="node-1",
        domains=SimpleNamespace(name_for=lambda ns, n: f"dvp-{ns}_{n}", connect=lambda: conn),
        instances=SimpleNamespace(list=lambda: [{"metadata": {"namespace": "team", "name": "vm-1"}}]),
        facts=SimpleNamespace(cpus=4, memory_bytes=8 * 1024**3),
        config=SimpleNamespace(reserved_cpu=1, reserved_memory="1Gi"),
        kube=SimpleNamespace(patch=lambda *a, **kw: patches.append((a, kw))),
    )


STATS: dict[str, Any] = {"cpu.time": 2_500_000_000, "balloon.rss": 204800, "balloon.current": 1048576,
         "block.count": 1, "block.0.name": "vda", "block.0.rd.bytes": 4096, "block.0.wr.bytes": 8192,
         "block.0.rd.reqs": 2, "block.0.wr.reqs": 3, "block.0.rd.times": 1_000_000, "block.0.wr.times": 0,
         "net.count": 1, "net.0.name": "tap0", "net.0.rx.bytes": 100, "net.0.tx.bytes": 200,
         "net.0.rx.pkts": 1, "net.0.tx.pkts": 2, "net.0.rx.drop": 0, "net.0.tx.drop": 0}


def test_domain_statistics_become_dvp_vm_metrics(tmp_path: Path) -> None:
    m = NodeMetrics(_ctx([("dvp-team_vm-1", STATS), ("someone-elses", STATS)], []), proc=_proc(tmp_path, 500))
    reg = Registry()
    reg.add_collector("n", m.collect)
    text = reg.expose()
    base = 'name="vm-1",namespace="team",node="node-1"'
    assert f"d8_virtualization_virtualmachine_cpu_usage_milliseconds_total{{{base}}} 2500" in text
    assert f"d8_virtualization_virtualmachine_memory_resident_bytes{{{base}}} 209715200" in text
    assert f'd8_virtualization_virtualmachine_block_device_read_bytes_total{{{base},block_device_name="vda"}} 4096' \
        in text
    assert f'd8_virtualization_virtualmachine_network_transmit_bytes_total{{{base},network="tap0"}} 200' in text
    assert text.count("d8_virtualization_virtualmachine_cpu_usage_milliseconds_total{") == 1
    assert 'kube_node_status_allocatable{node="node-1",resource="cpu",unit="core"} 3' in text
    assert 'kube_node_status_allocatable{node="node-1",resource="memory",unit="byte"} 7516192768' in text
    assert 'node_cpu_usage_seconds_total{node="node-1"} 5' in text


def test_host_usage_from_proc(tmp_path: Path) -> None:
    proc = _proc(tmp_path, 700)
    assert host_cpu_seconds(proc) == 7.0  # user only; idle and iowait are not busy
    assert host_memory_working_set(proc) == 2_000_000 * 1024


def test_two_samples_make_the_usage_record(tmp_path: Path) -> None:
    patches: list[Any] = []
    records = [("dvp-team_vm-1", dict(STATS))]
    m = NodeMetrics(_ctx(records, patches), proc=_proc(tmp_path, 500))
    before = m.sample()
    records[0] = ("dvp-team_vm-1", {**STATS, "cpu.time": STATS["cpu.time"] + 500_000_000})
    _proc(tmp_path, 700)
    after = m.sample()
    after = (before[0] + 2.0, after[1], after[2])
    usage = m.usage(before, after)
    assert usage.window == 2.0
    assert usage.node.cpu_nanocores == 1_000_000_000  # 2 CPU-seconds busy over 2 s
    assert usage.vms["team/vm-1"] == Usage(250_000_000, 209715200)
    m.publish(usage)
    (_res, name, body), _kw = patches[0]
    assert name == "node-1"
    assert NodeUsage.from_annotation(body["metadata"]["annotations"][USAGE_ANNOTATION]) == usage


@pytest.mark.parametrize("text", ["", "{", "[]", '{"timestamp": "t"}', '{"timestamp":"t","window":"x","cpu":1,'
                                  '"memory":1}'], ids=["empty", "broken", "list", "partial", "bad-window"])
def test_a_bad_usage_record_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=USAGE_ANNOTATION):
        NodeUsage.from_annotation(text)
    assert NodeUsage.of_node({"metadata": {"annotations": {USAGE_ANNOTATION: text}}}) is None
