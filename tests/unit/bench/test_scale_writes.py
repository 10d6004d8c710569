"""bench/scale counts the API writes per VM from the server's own apiserver_request_total."""

from __future__ import annotations

from bench.scale.writes import parse, summary

METRICS = """# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",group="",resource="events",scope="namespace",subresource="",verb="POST",version="v1"} 14
apiserver_request_total{code="200",component="apiserver",group="virtualization.deckhouse.io",resource="virtualmachines",scope="namespace",subresource="status",verb="PUT",version="v1alpha2"} 9
apiserver_request_total{code="409",component="apiserver",group="virtualization.deckhouse.io",resource="virtualmachines",scope="namespace",subresource="status",verb="PUT",version="v1alpha2"} 1
apiserver_request_total{code="200",component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1"} 50
apiserver_request_total{code="200",component="apiserver",group="",resource="leases",scope="namespace",subresource="",verb="PATCH",version="v1"} 2
apiserver_request_duration_seconds_count{resource="events",verb="POST"} 99
"""


def test_writes_are_counted_by_resource_and_reads_are_not() -> None:
    counted = parse(METRICS)
    assert counted == {"events": 14, "virtualmachines/status": 10, "leases": 2}
    assert summary({k: n / 2 for k, n in counted.items()}, top=2) == \
        "13.0 API writes/VM (events 7.0, virtualmachines/status 5.0)"
