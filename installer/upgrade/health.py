"""Is the platform healthy, on which version — the checks the upgrade waits on after each
restart, and its preflight reads.

Server health: `/readyz` answers 200, `/version` reports the expected version, the controllers'
Lease is held and renewed by a leader of the expected version, and DVCR answers and is not
collecting garbage (`dvp dvcr status` run on the server host with the installed binary).
Node health: the Node is Ready, its handler reports the expected version with a heartbeat
newer than the restart, and every libvirt domain that ran on the host before still runs with
the same domain id (an id changes when a domain is started again: this is how "the agent
restart never touched the VMs" is checked).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from controlplane.common.clusterversions import ClusterVersions, collect
from controlplane.common.kube.client import NODES, KubeClient
from installer import hostlayout
from installer.upgrade.platform import PlatformHost


@dataclass
class Verdict:
    ok: bool
    detail: str


def dvcr_status(server: PlatformHost) -> dict[str, object]:
    res = server.s().root(f"{hostlayout.BINARY} dvcr status -o json --data-dir {hostlayout.SERVER_DATA_DIR}",
                          what="asking DVCR for its status", check=False, timeout=60)
    try:
        doc: dict[str, object] = json.loads(res.out)
        return doc
    except ValueError:
        return {"answering": False, "gcRunning": False,
                "error": (res.err.strip().splitlines() or ["no answer"])[-1][:300]}


def server_verdict(kube: KubeClient, server: PlatformHost, version: str) -> Verdict:
    try:
        code = kube.status_of("/readyz", timeout=5)
    except Exception as exc:
        return Verdict(False, f"the API does not answer ({type(exc).__name__}: {str(exc)[:200]})")
    if code != 200:
        return Verdict(False, f"/readyz answers {code}")
    cv = collect(kube)
    if cv.server != version:
        return Verdict(False, f"the API server reports version {cv.server or '?'}, expected {version}")
    if not cv.controllers_leading or cv.controllers != version:
        return Verdict(False, f"controllers not leading on {version} (lease holder {cv.controllers_holder or 'none'}, "
                              f"version {cv.controllers or '?'}, renewed: {cv.controllers_leading})")
    dvcr = dvcr_status(server)
    if not dvcr.get("answering"):
        return Verdict(False, f"DVCR does not answer: {dvcr.get('error', '')}")
    if dvcr.get("gcRunning"):
        return Verdict(False, "DVCR is collecting garbage")
    return Verdict(True, f"API ready, controllers leading, DVCR answering, version {version}")


def running_domains(host: PlatformHost) -> dict[str, str]:
    """name -> domain id of the libvirt domains running on the host."""
    res = host.s().root("virsh -c qemu:///system -q list 2>/dev/null || true", what="listing running domains")
    out = {}
    for line in res.out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            out[parts[1]] = parts[0]
    return out


def _parse(ts: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def node_verdict(kube: KubeClient, host: PlatformHost, version: str, *, since: dt.datetime,
                 domains_before: dict[str, str]) -> Verdict:
    try:
        node = kube.get(NODES, host.node)
    except Exception as exc:
        return Verdict(False, f"Node {host.node} cannot be read ({str(exc)[:200]})")
    from controlplane.common.clusterversions import node_version

    nv = node_version(node)
    if nv.version != version:
        return Verdict(False, f"Node {host.node} reports handler version {nv.version or '?'}, expected {version}")
    if not nv.ready:
        return Verdict(False, f"Node {host.node} is not Ready ({nv.ready_reason or 'no condition'})")
    beat = _parse(nv.heartbeat)
    if beat is None or beat < since.replace(microsecond=0):
        return Verdict(False, f"Node {host.node} has no heartbeat since the restart")
    now_running = running_domains(host)
    lost = [n for n in domains_before if n not in now_running]
    restarted = [n for n, i in domains_before.items() if n in now_running and now_running[n] != i]
    if lost or restarted:
        return Verdict(False, f"VMs disturbed on {host.name}: stopped {lost or '-'}, restarted {restarted or '-'}")
    return Verdict(True, f"Node Ready on {version}, {len(domains_before)} running domain(s) untouched")


def wait_for(check: Callable[[], Verdict], *, timeout: float, every: float = 1.0,
             on_wait: Callable[[str], None] | None = None) -> Verdict:
    """Poll `check` until it passes or `timeout` runs out; returns the last verdict."""
    deadline = time.monotonic() + timeout
    while True:
        verdict = check()
        if verdict.ok or time.monotonic() >= deadline:
            return verdict
        if on_wait is not None:
            on_wait(verdict.detail)
        time.sleep(every)


def cluster_versions(kube: KubeClient) -> ClusterVersions:
    return collect(kube)
