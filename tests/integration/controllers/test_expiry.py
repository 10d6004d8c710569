"""What the platform deletes by itself, on time, with kubectl 1.33 writing and watching:
`--event-ttl`: an Event goes that long after its last write, as kube-apiserver's --event-ttl
makes it, and Events written before a restart expire after it; `--operation-ttl`: finished
VirtualMachineOperations and VirtualMachineSnapshotOperations go that long after their creation,
and a VM (a snapshot) keeps only its 10 newest finished ones, as DVP's garbage collectors have
it. Nothing else is touched."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import polling
from tests.services.apiserver import KUBECTL_V33, ApiServerProcess
from tests.services.kubectl import get, kubectl

pytestmark = pytest.mark.integration

TTL = 3.0
OPERATION_TTL = 10.0
eventually = functools.partial(polling.eventually, timeout=TTL * 5, interval=0.1)


def event(name: str) -> str:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"""apiVersion: v1
kind: Event
metadata: {{name: {name}, namespace: default}}
involvedObject: {{kind: ConfigMap, name: kept, namespace: default, apiVersion: v1}}
reason: Tested
message: written by the test
type: Normal
count: 1
firstTimestamp: "{now}"
lastTimestamp: "{now}"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("expiry") / "data",
                           extra_args=["--event-ttl", str(TTL), "--operation-ttl", str(OPERATION_TTL)])
    try:
        srv.start(timeout=120)
        srv.wait_ready()
        kubectl(srv, "create", "configmap", "kept", "--from-literal=k=v")
        yield srv
    finally:
        srv.stop()


def _json_stream(text: str) -> Iterator[dict[str, Any]]:
    """The objects of kubectl's `-o json` watch output, one after another."""
    decoder, pos = json.JSONDecoder(), 0
    while text[pos:].strip():
        pos += len(text[pos:]) - len(text[pos:].lstrip())
        obj, pos = decoder.raw_decode(text, pos)
        yield obj


def test_an_event_expires_and_watchers_see_it_deleted(server: ApiServerProcess) -> None:
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home)}
    watch = subprocess.Popen([str(KUBECTL_V33), "get", "events", "-n", "default", "--watch-only",
                              "--output-watch-events", "-o", "json"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # the watch is open before the create
        kubectl(server, "create", "-f", "-", input=event("short-lived"))
        created = time.monotonic()
        assert get(server, "event", "short-lived", "-n", "default")["reason"] == "Tested"
        eventually(lambda: not get(server, "event", "short-lived", "-n", "default"))
        assert time.monotonic() - created > TTL * 0.5, "deleted before its time"
    finally:
        time.sleep(0.5)
        watch.terminate()
        out, err = watch.communicate(timeout=10)
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in _json_stream(out)]
    assert seen == [("ADDED", "short-lived"), ("DELETED", "short-lived")], (seen, err)
    assert get(server, "configmap", "kept")["data"] == {"k": "v"}


OPERATIONS = {  # kind -> (plural, spec naming what is absent: each fails at once, so finishes)
    "VirtualMachineOperation": ("virtualmachineoperations", "{type: Start, virtualMachineName: absent}"),
    "VirtualMachineSnapshotOperation": ("virtualmachinesnapshotoperations",
                                        "{type: CreateVirtualMachine, virtualMachineSnapshotName: absent}"),
}


def operation(kind: str, name: str) -> str:
    return f"""---
apiVersion: virtualization.deckhouse.io/v1alpha2
kind: {kind}
metadata: {{name: {name}, namespace: default}}
spec: {OPERATIONS[kind][1]}
"""


def test_finished_operations_go_after_their_ttl_and_beyond_ten_per_group(server: ApiServerProcess) -> None:
    names = {"VirtualMachineOperation": [f"op-{i:02d}" for i in range(12)],
             "VirtualMachineSnapshotOperation": [f"sop-{i:02d}" for i in range(11)]}
    start = time.monotonic()
    kubectl(server, "create", "-f", "-", input="".join(operation(k, n) for k, ns in names.items() for n in ns))

    def left(kind: str) -> dict[str, str]:
        items = get(server, OPERATIONS[kind][0], "-n", "default").get("items", [])
        return {o["metadata"]["name"]: (o.get("status") or {}).get("phase", "") for o in items}

    for kind, created in names.items():
        def ten_left(kind: str = kind) -> dict[str, str] | None:
            ops = left(kind)
            return ops if len(ops) == 10 else None

        kept = polling.eventually(ten_left, timeout=OPERATION_TTL * 0.6, interval=0.1)
        assert sorted(kept) == created[-10:] and set(kept.values()) == {"Failed"}, kept  # the oldest went
    assert time.monotonic() - start < OPERATION_TTL, "checked before their ttl"
    polling.eventually(lambda: not any(left(kind) for kind in names), timeout=OPERATION_TTL * 3, interval=0.2)
    assert time.monotonic() - start > OPERATION_TTL * 0.8, "the newest went no earlier than their ttl"
    assert get(server, "configmap", "kept")["data"] == {"k": "v"}


def test_events_written_before_a_restart_expire_after_it(server: ApiServerProcess) -> None:
    kubectl(server, "create", "-f", "-", input=event("from-before"))
    server.stop()
    time.sleep(TTL + 1)  # down for longer than the ttl
    server.start(timeout=120)
    server.wait_ready()
    eventually(lambda: not get(server, "event", "from-before", "-n", "default"))
    assert get(server, "configmap", "kept")["data"] == {"k": "v"}
