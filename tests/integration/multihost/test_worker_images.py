"""A worker pulls a VM image from the master's DVCR with the credentials the install gave it (its
node token): an image imported into DVCR on the master becomes a disk volume on each worker."""

from __future__ import annotations

import json
import time

import pytest

from installer import hostlayout
from tests.integration.nodehandler.support import volume
from tests.support.clusterlab import Cluster

pytestmark = pytest.mark.integration

NS = "worker-images"


def test_workers_provision_volumes_from_dvcr(cluster3: Cluster) -> None:
    m = cluster3.master
    source = f"/tmp/dvp-probe-{m.node}.qcow2"  # /tmp is the machine's: a name of its own
    m.sh(f"qemu-img create -q -f qcow2 {source} 16M")
    try:
        m.sh(f"{hostlayout.BINARY} dvcr import {source} --to cvi/worker-probe:v1 -o json")
    finally:
        m.sh(f"rm -f {source}")
    ref = f"{m.host.address}:5443/cvi/worker-probe:v1"
    cluster3.kubectl("create", "namespace", NS)
    try:
        for w in cluster3.workers:
            body = volume(f"from-dvcr-{w.name}", w.node, "32Mi", image_ref=ref, namespace=NS)
            cluster3.kubectl("apply", "-f", "-", input=json.dumps(body))
        deadline = time.monotonic() + 180
        while True:
            phases = {w.name: cluster3.kubectl("get", "internalvirtualdiskvolumes", "-n", NS, f"from-dvcr-{w.name}",
                                               "-o", "jsonpath={.status.phase} {.status.message}").stdout
                      for w in cluster3.workers}
            if all(p.startswith("Ready") for p in phases.values()):
                break
            assert time.monotonic() < deadline, f"volumes not Ready: {phases}"
            assert not any(p.startswith("Failed") for p in phases.values()), phases
            time.sleep(1)
        for w in cluster3.workers:  # the image landed in the worker's own cache
            assert list(w.path("/var/lib/dvp/images").glob("*.img")), f"no image cached on {w.name}"
    finally:
        cluster3.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        cluster3.kubectl("delete", "internalvirtualdiskvolumes", "-n", NS, "--all", "--wait=true", "--timeout=120s",
                         check=False)
