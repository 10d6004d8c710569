"""`dvp install` run again with the config's hosts changed: a host taken out while a VM runs there
is refused, naming the host and the VM, before anything changes; a host added joins (its Node
Ready) while the hosts already installed change nothing. The shared cluster is left with its
three hosts."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.nodehandler.support import instance
from tests.support.clusterlab import Cluster

pytestmark = pytest.mark.integration

NS = "hosts-change"


def test_removing_a_host_that_runs_a_vm_is_refused(cluster3: Cluster) -> None:
    worker = cluster3.workers[-1]
    cluster3.kubectl("create", "namespace", NS)
    vm = instance("keeps-host", worker.node, namespace=NS, memory="64Mi", grace=1)
    cluster3.kubectl("apply", "-f", "-", input=json.dumps(vm))
    try:
        deadline = time.monotonic() + 180
        while cluster3.kubectl("get", "internalvirtualmachineinstances", "-n", NS, "keeps-host", "-o",
                               "jsonpath={.status.phase}").stdout != "Running":
            assert time.monotonic() < deadline, "the VM did not start on the worker"
            time.sleep(1)
        run = cluster3.install(nodes=[n for n in cluster3.nodes if n is not worker])
        assert not run.ok
        assert run.out["failedPhase"] == "preflight"
        assert run.phases() == {"validate": "ok", "preflight": "failed"}
        message = str(run.out["message"])
        assert f"node {worker.node} (host {worker.host.address}) still runs 1 VM(s): {NS}/keeps-host" in message
        assert cluster3.ready_nodes() == {n.node: True for n in cluster3.nodes}
    finally:
        cluster3.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        cluster3.kubectl("delete", "internalvirtualmachineinstances", "-n", NS, "keeps-host", "--wait=true",
                         "--timeout=120s", check=False)


def test_added_host_joins_and_the_others_change_nothing(cluster3: Cluster) -> None:
    three = cluster3.nodes
    new = cluster3.lab.add_worker("w9")
    try:
        run = cluster3.install(nodes=[*three, new])
        assert run.ok, run.describe()
        changed = run.out["changed"]
        assert {n.name: changed[n.name] for n in three} == {n.name: 0 for n in three}
        assert changed[new.name] > 0
        assert cluster3.ready_nodes() == {n.node: True for n in [*three, new]}
        agent = new.path("/etc/dvp/agent.kubeconfig").read_text()
        assert all(agent != w.path("/etc/dvp/agent.kubeconfig").read_text() for w in cluster3.workers if w is not new)
    finally:  # back to the shared three: the new host's agent stopped, its Node gone
        cluster3.service(new, "stop")
        cluster3.kubectl("delete", "node", new.node, "--ignore-not-found", check=False)
        cluster3.members = list(three)
