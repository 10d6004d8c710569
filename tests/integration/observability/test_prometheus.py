"""Acceptance: a real Prometheus scrapes a running `dvp server` over HTTPS with a bearer
token, loads the shipped alert rules, and its query API answers with the API server's request
rate and the controllers' work-queue depth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api import monitoring
from tests.services.apiserver import ApiServerProcess
from tests.services.prometheus import PrometheusProcess, Target


@pytest.fixture
def prometheus(apiserver: ApiServerProcess, tmp_path: Path) -> Iterator[PrometheusProcess]:
    rules = tmp_path / "dvp.rules.yaml"
    rules.write_text(monitoring.rules().read_text())
    prom = PrometheusProcess(tmp_path / "prometheus",
                             [Target("dvp-apiserver", f"127.0.0.1:{apiserver.port}", apiserver.ca_file,
                                     apiserver.token)], rule_files=[rules])
    prom.start()
    yield prom
    prom.stop()


def test_prometheus_scrapes_the_platform(apiserver: ApiServerProcess, prometheus: PrometheusProcess) -> None:
    up = prometheus.wait_query('up{job="dvp-apiserver"} == 1', what="the API server scraped")
    assert up[0]["metric"]["instance"] == f"127.0.0.1:{apiserver.port}"
    # a rate needs the counter to grow between scrapes: keep creating until Prometheus sees it grow
    rate: list[dict[str, Any]] = []
    created = 0
    deadline = time.monotonic() + 60
    while not rate and time.monotonic() < deadline:
        apiserver.kubectl("create", "configmap", f"prom-cm-{created}", "-n", "default")
        created += 1
        time.sleep(0.5)
        rate = prometheus.query(
            'sum(rate(apiserver_request_total{verb="POST",resource="configmaps",code="201"}[10s])) > 0')
    assert rate, "Prometheus saw no configmap create rate within 60s"
    assert float(rate[0]["value"][1]) > 0
    depth = prometheus.wait_query('workqueue_depth{name="vm"}', what="the vm controller's work-queue depth")
    assert float(depth[0]["value"][1]) >= 0
    adds = prometheus.wait_query('workqueue_adds_total{name="vmclass"} > 0', what="vmclass work-queue adds")
    assert float(adds[0]["value"][1]) > 0
    groups = prometheus.api("rules")["groups"]
    assert {g["name"] for g in groups} >= {"dvp.nodes", "dvp.virtualmachines", "dvp.storage"}
    assert all(r["health"] == "ok" for g in groups for r in g["rules"] if r.get("lastEvaluation")), groups
    for i in range(created):
        apiserver.kubectl("delete", "configmap", f"prom-cm-{i}", "-n", "default")
