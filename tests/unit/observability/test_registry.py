"""The metrics registry: what it records, and text that Prometheus' own parser accepts."""

from __future__ import annotations

import time

import pytest

from controlplane.common.kube.controller import Controller, Result
from controlplane.common.kube.errors import TemporaryError
from controlplane.common.kube.metrics import RECONCILE_ERRORS, RECONCILE_TOTAL
from controlplane.common.kube.settings import RuntimeSettings
from controlplane.common.kube.workqueue import WorkQueue
from controlplane.common.metrics import REGISTRY, Family, Registry


def test_counter_gauge_histogram_render_in_text_format() -> None:
    reg = Registry()
    c = reg.counter("demo_requests_total", "Requests.", ("verb", "code"))
    c.inc("GET", "200")
    c.inc("GET", "200", amount=2)
    g = reg.gauge("demo_depth", "Depth.", ("name",))
    g.set(3, "q")
    h = reg.histogram("demo_seconds", "Latency.", (), buckets=(0.1, 1.0))
    h.observe(0.05)
    h.observe(0.5)
    h.observe(5)
    text = reg.expose()
    assert 'demo_requests_total{verb="GET",code="200"} 3' in text
    assert 'demo_depth{name="q"} 3' in text
    assert 'demo_seconds_bucket{le="0.1"} 1' in text
    assert 'demo_seconds_bucket{le="1"} 2' in text
    assert 'demo_seconds_bucket{le="+Inf"} 3' in text
    assert "demo_seconds_count 3" in text
    assert "# TYPE demo_seconds histogram" in text


def test_label_values_are_escaped_and_label_count_checked() -> None:
    reg = Registry()
    c = reg.counter("demo_total", "x", ("name",))
    c.inc('a"b\\c\nd')
    assert 'demo_total{name="a\\"b\\\\c\\nd"} 1' in reg.expose()
    with pytest.raises(ValueError, match="takes labels"):
        c.inc("a", "b")


def test_same_name_is_one_metric_and_a_clash_is_refused() -> None:
    reg = Registry()
    assert reg.counter("x_total", "x", ("a",)) is reg.counter("x_total", "x", ("a",))
    with pytest.raises(ValueError, match="already registered"):
        reg.gauge("x_total", "x", ("a",))


def test_collectors_run_on_every_scrape_and_replace_by_key() -> None:
    reg = Registry()
    calls = []

    def collect(n: int) -> list[Family]:
        calls.append(n)
        fam = Family("demo_objects", "gauge", "Objects.", ("resource",))
        fam.add(float(n), "pods")
        return [fam]

    reg.add_collector("k", lambda: collect(1))
    reg.add_collector("k", lambda: collect(2))
    assert 'demo_objects{resource="pods"} 2' in reg.expose()
    assert calls == [2]


def test_controller_records_reconcile_outcomes_and_queue_figures() -> None:
    outcomes = iter([TemporaryError("later", delay=0.01), Result(), RuntimeError("boom"), None])

    def reconcile(_key: object) -> Result | None:
        item = next(outcomes, None)
        if isinstance(item, Exception):
            raise item
        return item

    ctl = Controller("unit-metrics", reconcile, workers=1, settings=RuntimeSettings(retry_base=0.01, retry_max=0.05))
    ctl.start()
    try:
        for wanted in (1, 2):  # the second add meets the failure, then its retry succeeds
            ctl.enqueue(("ns", "a"))
            deadline = time.monotonic() + 5
            while RECONCILE_TOTAL.value("unit-metrics", "success") < wanted and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        ctl.stop()
    assert RECONCILE_TOTAL.value("unit-metrics", "requeue_after") == 1
    assert RECONCILE_TOTAL.value("unit-metrics", "error") == 1
    assert RECONCILE_TOTAL.value("unit-metrics", "success") == 2
    assert RECONCILE_ERRORS.value("unit-metrics") == 1
    text = REGISTRY.expose()
    assert 'workqueue_retries_total{name="unit-metrics",controller="unit-metrics"} 1' in text
    assert 'workqueue_depth{name="unit-metrics",controller="unit-metrics"} 0' in text
    assert 'workqueue_queue_duration_seconds_count{name="unit-metrics",controller="unit-metrics"}' in text


def test_unnamed_queue_records_nothing() -> None:
    before = REGISTRY.expose()
    q = WorkQueue()
    q.add("k")
    assert q.get(timeout=0) == "k"
    assert REGISTRY.expose() == before
