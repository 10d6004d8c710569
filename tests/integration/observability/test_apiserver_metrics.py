"""`GET /metrics` on a real `dvp server`: authenticated, Prometheus text that promtool accepts,
and the request, storage and controller figures kube-apiserver and controller-runtime name."""

from __future__ import annotations

import re
import subprocess
import time

from tests.services.apiserver import KUBECTL_V33, ApiServerProcess


def _metrics(server: ApiServerProcess) -> str:
    env = {"KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home)}
    out = subprocess.run([str(KUBECTL_V33), "get", "--raw", "/metrics"], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout


def _value(text: str, pattern: str) -> float:
    values = [float(m.group(1)) for m in re.finditer(rf"^{pattern} (\S+)$", text, re.MULTILINE)]
    assert values, f"no sample matches {pattern}"
    return sum(values)


def test_metrics_needs_a_token(apiserver: ApiServerProcess) -> None:
    status, _ = apiserver.raw("GET", "/metrics", token="")
    assert status == 401
    status, _ = apiserver.raw("GET", "/metrics", token="not-a-token")
    assert status == 401


def test_request_counts_follow_what_clients_did(apiserver: ApiServerProcess) -> None:
    before = _metrics(apiserver)
    for i in range(3):
        apiserver.kubectl("create", "configmap", f"metrics-cm-{i}", "-n", "default")
    apiserver.kubectl("get", "configmaps", "-n", "default")
    after = _metrics(apiserver)
    post = r'apiserver_request_total\{verb="POST",group="",version="v1",resource="configmaps",subresource="",code="201"\}'
    assert _value(after, post) - (_value(before, post) if re.search(post, before) else 0) == 3
    assert _value(after, r'apiserver_request_total\{verb="LIST",group="",version="v1",resource="configmaps",'
                         r'subresource="",code="200"\}') >= 1
    assert _value(after, r'apiserver_request_duration_seconds_count\{verb="POST",group="",version="v1",'
                         r'resource="configmaps",subresource=""\}') >= 3
    assert _value(after, r'apiserver_storage_objects\{resource="configmaps"\}') >= 3
    assert _value(after, r'apiserver_storage_size_bytes\{storage_cluster_id="sqlite"\}') > 0
    assert _value(after, "etcd_disk_backend_commit_duration_seconds_count") >= 3


def test_watchers_and_controllers_are_counted(apiserver: ApiServerProcess) -> None:
    deadline = time.monotonic() + 30
    text = _metrics(apiserver)
    while 'controller_runtime_reconcile_total{controller="vmclass",result="success"}' not in text \
            and time.monotonic() < deadline:
        time.sleep(0.5)
        text = _metrics(apiserver)
    # the controllers watch the platform's kinds through this same server
    assert _value(text, r'apiserver_registered_watchers\{group="virtualization.deckhouse.io",'
                        r'resource="virtualmachines"\}') >= 1
    assert _value(text, r'apiserver_longrunning_requests\{verb="WATCH",[^}]*\}') >= 1
    assert re.search(r'^workqueue_depth\{name="vm",controller="vm"\} \d', text, re.MULTILINE)
    assert re.search(r'^workqueue_adds_total\{name="vmclass",controller="vmclass"\} [1-9]', text, re.MULTILINE)
    assert re.search(r'^controller_runtime_reconcile_total\{controller="vmclass",result="success"\} [1-9]', text,
                     re.MULTILINE)


def test_exposition_passes_promtool(apiserver: ApiServerProcess) -> None:
    result = subprocess.run(["promtool", "check", "metrics"], input=_metrics(apiserver), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_invented_paths_add_no_series(apiserver: ApiServerProcess) -> None:
    for i in range(3):
        assert apiserver.raw("GET", f"/api/v1/invented-{i}", token="")[0] == 401
        assert apiserver.raw("GET", f"/apis/example.com/v1/made-up-{i}")[0] == 404
    text = _metrics(apiserver)
    assert "invented-" not in text and "made-up-" not in text and "example.com" not in text
    assert _value(text, r'apiserver_request_total\{verb="LIST",group="",version="",resource="",subresource="",'
                        r'code="401"\}') >= 3
    assert _value(text, r'apiserver_request_total\{verb="LIST",group="",version="",resource="",subresource="",'
                        r'code="404"\}') >= 3


def test_dvcr_requests_and_storage_are_exported(apiserver: ApiServerProcess) -> None:
    import json
    import ssl
    import urllib.error
    import urllib.request

    info = json.loads(apiserver.dvcr_info.read_text())
    ctx = ssl.create_default_context(cafile=info["ca"])
    for _ in range(2):
        try:
            urllib.request.urlopen(f"{info['url']}/v2/", context=ctx, timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    text = _metrics(apiserver)
    assert _value(text, r'registry_http_requests_total\{code="401",handler="base",method="GET"\}') >= 2
    assert _value(text, r'kubelet_volume_stats_capacity_bytes\{namespace="d8-virtualization",'
                        r'persistentvolumeclaim="dvcr"\}') > 0


def test_priority_and_fairness_counts_the_controllers_in_their_level(apiserver: ApiServerProcess) -> None:
    """The controllers' reads and writes pass the priority-and-fairness gate at `workload-high`;
    the admin (`system:masters`) is exempt and counted nowhere."""
    dispatched = (r'apiserver_flowcontrol_dispatched_requests_total\{flow_schema="dvp-controllers",'
                  r'priority_level="workload-high"\}')
    deadline = time.monotonic() + 30
    text = _metrics(apiserver)
    while not re.search(dispatched + r" [1-9]", text) and time.monotonic() < deadline:
        time.sleep(0.5)
        text = _metrics(apiserver)
    assert _value(text, dispatched) >= 1
    assert _value(text, r'apiserver_flowcontrol_request_wait_duration_seconds_count\{flow_schema="dvp-controllers",'
                        r'priority_level="workload-high",execute="true"\}') >= 1
    assert 'priority_level="exempt"' not in text
