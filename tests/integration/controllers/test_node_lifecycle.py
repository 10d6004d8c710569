"""The node lifecycle controller in a real `dvp server` (`--node-grace 6`), with Node objects
registered through the API whose Leases a test thread renews (tests.support.fakenodes):
a node whose Lease stops being renewed goes Ready=Unknown within its grace period, the VM
placed there reports the lost node by name and new VMs go elsewhere; renewed again and its
status written again (as the node handler does), it is Ready and the VM's report goes; a node
whose clock is ten minutes off gets ClockSynchronized=False and nothing is placed there."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.controllers.test_scheduling import apply, get, node_of, placed, running_condition, vm
from tests.services import polling
from tests.services.apiserver import ApiServerProcess
from tests.support.fakenodes import FakeNodes

pytestmark = pytest.mark.integration
GRACE = 6.0
eventually = functools.partial(polling.eventually, timeout=90, interval=0.3)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("lifecycle") / "data", extra_args=["--node-grace", str(GRACE)])
    srv.start(60)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def nodes(server: ApiServerProcess) -> Iterator[FakeNodes]:
    fake = FakeNodes(server, renew_every=1.0)
    yield fake
    fake.stop()


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


UNREACHABLE = "node.kubernetes.io/unreachable"


def taint_keys(server: ApiServerProcess, node: str) -> set[str]:
    return {t.get("key") for t in get(server, "node", node).get("spec", {}).get("taints") or []}


def only_here(node: str) -> dict[str, Any]:
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}}]}}


def test_a_node_that_stops_renewing_its_lease_is_lost_within_grace_and_back_when_it_returns(
        server: ApiServerProcess, nodes: FakeNodes) -> None:
    nodes.add("life-a")
    nodes.add("life-b")
    apply(server, vm("on-a", affinity=only_here("life-a")))
    assert placed(server, "on-a") == {"on-a": "life-a"}
    nodes.down("life-a")
    stopped = time.monotonic()
    ready = eventually(lambda: (c := condition(get(server, "node", "life-a"), "Ready")).get("status") == "Unknown"
                       and c)
    took = time.monotonic() - stopped
    assert ready["reason"] == "NodeStatusUnknown" and "kube-node-lease/life-a" in ready["message"]
    assert GRACE - 1 <= took <= GRACE + 20, took  # not before its grace, and soon after (a loaded machine)
    lost = eventually(lambda: (c := running_condition(server, "on-a")).get("reason") == "NodeUnresponsive" and c)
    assert lost["status"] == "Unknown" and "node life-a is lost" in lost["message"]
    eventually(lambda: UNREACHABLE in taint_keys(server, "life-a"))  # as kube's node lifecycle controller
    rv = get(server, "vm", "on-a")["metadata"]["resourceVersion"]
    time.sleep(3)  # said once: no write per cycle
    assert get(server, "vm", "on-a")["metadata"]["resourceVersion"] == rv
    apply(server, vm("while-lost", affinity=only_here("life-a")))
    assert placed(server, "while-lost") == {"while-lost": "life-b"}
    # back: the Lease renewed again and the node handler's own status written again
    nodes.up("life-a")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    nodes.set_status("life-a", {"conditions": [{"type": "Ready", "status": "True", "reason": "NodeHandlerReady",
                                                "message": "back", "lastHeartbeatTime": now,
                                                "lastTransitionTime": now}]})
    eventually(lambda: condition(get(server, "node", "life-a"), "Ready").get("status") == "True")
    eventually(lambda: UNREACHABLE not in taint_keys(server, "life-a"))
    back = eventually(lambda: (c := running_condition(server, "on-a")).get("reason") != "NodeUnresponsive" and c)
    assert "life-a is back" in back["message"]
    time.sleep(GRACE + 2)  # renewed all along: still Ready after another grace period
    assert condition(get(server, "node", "life-a"), "Ready")["status"] == "True"


def test_a_node_with_a_clock_ten_minutes_off_is_flagged_and_avoided(server: ApiServerProcess,
                                                                     nodes: FakeNodes) -> None:
    nodes.add("skewed")
    nodes.add("steady")
    nodes.skew["skewed"] = 600.0
    cond = eventually(lambda: (c := condition(get(server, "node", "skewed"), "ClockSynchronized"))
                      .get("status") == "False" and c)
    assert cond["reason"] == "ClockSkewed" and "600s ahead of" in cond["message"], cond
    assert eventually(lambda: condition(get(server, "node", "steady"), "ClockSynchronized").get("status") == "True")
    apply(server, vm("avoids-skew", affinity=only_here("skewed")))
    assert placed(server, "avoids-skew")["avoids-skew"] != "skewed"
    nodes.skew["skewed"] = 0.0
    eventually(lambda: condition(get(server, "node", "skewed"), "ClockSynchronized").get("status") == "True")
    apply(server, vm("after-sync", affinity=only_here("skewed")))
    assert placed(server, "after-sync") == {"after-sync": "skewed"}
    assert node_of(server, "avoids-skew") != "skewed"  # placed VMs stay where they are
