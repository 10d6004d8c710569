"""A worker that may not join says why, naming the host and the check: a wrong token (the node
handler's join check against the API server, which the install runs on every worker before
starting `dvp agent`), and a clock 10 minutes off (the preflight's `connection.clock_skew`
against the master, so the install stops before it changes anything)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from installer import hostlayout
from tests.support.clusterlab import Cluster
from tests.support.upgradelab import LabNode

pytestmark = pytest.mark.integration


def test_wrong_token_is_refused_naming_host_and_check(cluster3: Cluster) -> None:
    worker = cluster3.workers[-1]
    good = worker.sh(f"{hostlayout.BINARY} agent --config {hostlayout.AGENT_CONFIG} --check", check=False)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == {"ok": True, "problems": []}
    wrong = f"/tmp/dvp-wrong-{worker.node}.kubeconfig"  # /tmp is the machine's: a name of its own
    worker.sh(f"sed 's/^\\( *token: \\).*/\\1not-the-node-token/' /etc/dvp/agent.kubeconfig > {wrong}")
    try:
        bad = worker.sh(f"{hostlayout.BINARY} agent --config {hostlayout.AGENT_CONFIG} "
                        f"--kubeconfig {wrong} --check", check=False)
    finally:
        worker.sh(f"rm -f {wrong}")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["problems"][0]["check"] == "token"
    message = bad.stderr.strip().splitlines()[-1]
    assert message.startswith(f"host {worker.node}: join check token: ")
    assert f"refused the token of system:node:{worker.node} (401 Unauthorized)" in message
    assert "not-the-node-token" not in bad.stderr + bad.stdout  # a secret, even a wrong one, is not echoed


@pytest.fixture
def clock_ahead(cluster3: Cluster) -> Iterator[LabNode]:
    """The last worker's clock 10 minutes ahead, as its shell's `date` tells it (a `date` in the lab
    host's private /usr/local/bin, first on its PATH)."""
    worker = cluster3.workers[-1]
    fake = worker.path("/usr/local/bin/date")
    fake.write_text('#!/bin/sh\nexec /usr/bin/date -d "@$(( $(/usr/bin/date +%s) + 600 ))" "$@"\n')
    fake.chmod(0o755)
    try:
        yield worker
    finally:
        fake.unlink()


def test_clock_ten_minutes_off_stops_the_install_naming_host_and_check(cluster3: Cluster, clock_ahead: LabNode) -> None:
    assert int(clock_ahead.sh("date +%s").stdout) - int(cluster3.master.sh("date +%s").stdout) >= 599
    run = cluster3.install()
    assert not run.ok
    assert run.out["failedPhase"] == "preflight"
    assert run.phases() == {"validate": "ok", "preflight": "failed"}  # nothing was changed on any host
    message = str(run.out["message"])
    assert re.search(rf"host {clock_ahead.name}: connection\.clock_skew: \+(59\d|60\d)\.\d s against master "
                     rf"{cluster3.master.name} ", message), message
    assert "synchronise the clocks" in message
    assert f"host {cluster3.master.name}:" not in message
    assert cluster3.ready_nodes() == {n.node: True for n in cluster3.nodes}
