"""The client-side runtime against a real `dvp server`: informers follow changes and survive a
server restart, the controller loop retries and requeues, events aggregate, and leader
election gives the lease to exactly one of two candidates."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import urllib3

from controlplane.common.kube.client import CONFIGMAPS, EVENTS, KubeClient
from controlplane.common.kube.controller import Controller, Result
from controlplane.common.kube.events import EventRecorder
from controlplane.common.kube.informer import Informer
from controlplane.common.kube.leader import LeaderElector
from controlplane.common.kube.settings import RuntimeSettings
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
FAST = RuntimeSettings(watch_timeout=5, watch_error_backoff=(0.1, 0.2), resync_period=3600,
                       lease_duration=2, lease_renew_every=0.3, lease_retry_every=0.2)


def eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def test_informer_follows_changes_across_a_server_restart(fresh_apiserver: ApiServerProcess) -> None:
    kube = KubeClient.from_kubeconfig(fresh_apiserver.kubeconfig)
    kube.create(CONFIGMAPS, cm("before", v="1"))
    inf = Informer(kube, CONFIGMAPS, namespace="default", settings=FAST)
    seen: list[tuple[str, str]] = []
    inf.add_handler(lambda t, o, _old: seen.append((t, o["metadata"]["name"])))
    inf.start()
    assert inf.wait_synced(10)
    assert inf.get("default", "before")["data"] == {"v": "1"}
    kube.create(CONFIGMAPS, cm("live", v="1"))
    eventually(lambda: inf.get("default", "live") is not None)
    fresh_apiserver.kill()
    fresh_apiserver.start()
    kube2 = KubeClient.from_kubeconfig(fresh_apiserver.kubeconfig)
    kube2.patch(CONFIGMAPS, "live", {"data": {"v": "2"}}, "default")
    kube2.delete(CONFIGMAPS, "before", "default")
    eventually(lambda: (inf.get("default", "live") or {}).get("data") == {"v": "2"})
    eventually(lambda: inf.get("default", "before") is None)
    assert ("DELETED", "before") in seen
    inf.stop()


def test_controller_retries_failures_and_honours_requeue(apiserver: ApiServerProcess) -> None:
    calls: dict[str, int] = {}
    done = threading.Event()

    def reconcile(key: Any) -> Result | None:
        calls[key] = calls.get(key, 0) + 1
        if key == "flaky" and calls[key] < 3:
            raise RuntimeError("not yet")
        if key == "again" and calls[key] < 2:
            return Result(requeue_after=0.05)
        if calls.get("flaky", 0) >= 3 and calls.get("again", 0) >= 2:
            done.set()
        return None

    c = Controller("test", reconcile, settings=RuntimeSettings(retry_base=0.01))
    c.start()
    c.enqueue("flaky")
    c.enqueue("again")
    assert done.wait(5)
    c.stop()
    assert calls == {"flaky": 3, "again": 2}


def test_event_recorder_aggregates_repeats(apiserver: ApiServerProcess) -> None:
    kube = KubeClient.from_kubeconfig(apiserver.kubeconfig)
    obj = kube.create(CONFIGMAPS, cm("evented"))
    rec = EventRecorder(kube, "tests")
    for _ in range(3):
        rec.record(obj, type="Warning", reason="Broken", message="it broke")
    events = kube.list(EVENTS, "default", field_selector="involvedObject.name=evented")["items"]
    assert len(events) == 1 and events[0]["count"] == 3 and events[0]["reason"] == "Broken"
    described = apiserver.kubectl("describe", "configmap", "evented").stdout
    assert "Broken" in described and "it broke" in described


def test_a_watch_cut_short_leaves_the_requests_their_open_connection(apiserver: ApiServerProcess,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A watch its reader stops while the server still has events for it: the next request goes
    out on an open connection (no new TLS handshake) and reads its own answer."""
    kube = KubeClient.from_kubeconfig(apiserver.kubeconfig)
    for name in ("cut-a", "cut-b", "cut-c"):
        kube.create(CONFIGMAPS, {**cm(name, v=name), "metadata": {"name": name, "namespace": "default",
                                                                   "labels": {"test": "cut-short"}}})
    assert kube.get(CONFIGMAPS, "cut-a", "default")["data"] == {"v": "cut-a"}  # the request pool: one open connection
    connects: list[str] = []
    connect = urllib3.connection.HTTPSConnection.connect

    def counted(conn: urllib3.connection.HTTPSConnection) -> None:
        connects.append(conn.host)
        connect(conn)

    monkeypatch.setattr(urllib3.connection.HTTPSConnection, "connect", counted)
    for _ in range(2):
        for event in kube.watch(CONFIGMAPS, "default", label_selector="test=cut-short", timeout_seconds=30):
            assert event["type"] == "ADDED"
            break  # two more ADDED are on their way: left unread
        time.sleep(0.2)  # they have arrived
        before = len(connects)
        assert kube.get(CONFIGMAPS, "cut-c", "default")["data"] == {"v": "cut-c"}
        assert len(connects) == before, "the request after a watch cut short opened a new connection"
    assert kube.list(CONFIGMAPS, "default", label_selector="test=cut-short")["items"][0]["metadata"]["name"] == "cut-a"


def test_leader_election_picks_exactly_one_and_fails_over(apiserver: ApiServerProcess) -> None:
    kube = KubeClient.from_kubeconfig(apiserver.kubeconfig)
    leading: dict[str, bool] = {"a": False, "b": False}

    def elector(ident: str) -> LeaderElector:
        return LeaderElector(kube, name="test-leader", namespace="kube-system", identity=ident,
                             on_started=lambda: leading.__setitem__(ident, True),
                             on_lost=lambda: leading.__setitem__(ident, False), settings=FAST)

    a, b = elector("a"), elector("b")
    a.start()
    eventually(lambda: leading["a"])
    b.start()
    time.sleep(1.5)
    assert leading == {"a": True, "b": False}
    a.stop()  # a stops renewing; b takes over after the lease expires
    eventually(lambda: leading["b"], timeout=10)
    b.stop()
