"""A small cluster on lab hosts for the cross-host VM network tests: `dvp server` (with its
in-process node handler) on the master, `dvp agent` on each worker, all from this source tree
(`.venv/bin/dvp`), with VM routes on (docs/network.md).

The hosts are `UpgradeLab` hosts (own libvirtd, private /etc/dvp, /var/lib/dvp, ...) on one
shared layer-2 segment (`HostLab(lan=True)`), so their InternalIPs are neighbours.
Workers join the way the install does: `dvp join` on the master issues each one's kubeconfig
and console certificate, copied to the worker's /etc/dvp. Used until a shared installed
multi-host fixture replaces it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from controlplane.api.internal import API_VERSION, INSTANCE_KIND, NODE_LABEL
from controlplane.common.kube.client import NODES, KubeClient
from installer import hostlayout
from tests.support.upgradelab import LabNode, UpgradeLab

REPO = Path(__file__).resolve().parents[2]
DVP = REPO / ".venv" / "bin" / "dvp"
VM_CIDR = "10.66.0.0/16"
ROUTE_TABLE = 166


def vm_routes(n: LabNode) -> dict[str, str]:
    """VM address -> gateway in the host's VM route table."""
    out = n.sh(f"ip -4 route show table {ROUTE_TABLE}", check=False).stdout
    routes = {}
    for line in out.splitlines():
        words = line.split()
        if "via" in words:
            routes[words[0]] = words[words.index("via") + 1]
    return routes


def http(n: LabNode, url: str, *, timeout: float = 3) -> str | None:
    """The body at `url` fetched from inside host `n`, or None (no answer, or an HTTP error)."""
    done = n.sh(f"curl -sf --noproxy '*' -m {timeout} {url}", check=False)
    return done.stdout if done.returncode == 0 else None


def peer_fetch_script(ip: str) -> str:
    """User data for a guest that fetches http://IP/ every second and serves the marker line it
    got as /peer.html (gone while the peer does not answer): VM-to-VM reachability, seen from outside."""
    return f"""#!/bin/sh
# busybox nc, not wget: the static busybox's wget looks the port up through NSS and crashes
while true; do
  if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80 > /tmp/peer.raw 2>/dev/null &&
     grep DVP-GUEST-READY /tmp/peer.raw > /www/peer.tmp; then
    mv /www/peer.tmp /www/peer.html
  else
    rm -f /www/peer.html
  fi
  sleep 1
done
"""


def wait_routed(n: LabNode, ip: str, via: str | None, *, timeout: float, log: str = "") -> None:
    """Wait until host `n` routes `ip` via `via` (None: has no route for it)."""
    deadline = time.monotonic() + timeout
    while (have := vm_routes(n)).get(ip) != via:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n.name}: route to {ip} {'via ' + via if via else 'absent'}: not within "
                               f"{timeout:.0f}s (its VM routes: {have}){'; log tail:' + chr(10) + log if log else ''}")
        time.sleep(0.5)


def wait_http(n: LabNode, url: str, *, what: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (body := http(n, url)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {url} from {n.name} did not answer within {timeout:.0f}s")
        time.sleep(1)
    return body


def instance(name: str, node: str, ip: str, mac: str, image: str, *, namespace: str,
             user_data: str = "") -> dict[str, Any]:
    """An instance booting the guest test image straight from its file (no volume, so it can be
    started on any node), with one NIC on the VM network."""
    spec: dict[str, Any] = {
        "nodeName": node, "runState": "Running", "cpu": {"cores": 1}, "memory": {"size": "256Mi"},
        "disks": [{"name": "root", "image": {"ref": f"file://{image}"}}],
        "nics": [{"name": "default", "mac": mac, "ip": ip}], "shutdownGracePeriodSeconds": 5,
    }
    if user_data:
        spec["cloudInit"] = {"userData": user_data}
    return {"apiVersion": API_VERSION, "kind": INSTANCE_KIND,
            "metadata": {"name": name, "namespace": namespace, "labels": {NODE_LABEL: node}}, "spec": spec}


class RouteLab:
    def __init__(self, *, workers: int = 2, route_mode: str = "auto") -> None:
        self.route_mode = route_mode
        self.lab = UpgradeLab(workers=workers, lan=True)
        self.agents: dict[str, int] = {}
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    @property
    def nodes(self) -> list[LabNode]:
        return self.lab.nodes

    @property
    def master(self) -> LabNode:
        return self.lab.master

    def _agent_config(self, n: LabNode, **extra: Any) -> bytes:
        doc = {"node-ip": n.host.address, "state-dir": hostlayout.STATE_DIR, "run-dir": hostlayout.RUN_DIR,
               "vm-cidr": VM_CIDR, "vm-routes": True, "vm-route-mode": self.route_mode, "domain-type": "qemu", **extra}
        return yaml.safe_dump(doc).encode()

    def _start(self) -> None:
        m = self.master
        m.write(hostlayout.AGENT_CONFIG, self._agent_config(m))
        m.sh(f"setsid {DVP} server --data-dir {hostlayout.SERVER_DATA_DIR} --listen 0.0.0.0:6443 "
             f"--advertise-address {m.host.address} --dvcr-listen 0.0.0.0:5443 --vm-cidr {VM_CIDR} "
             f"--agent-config {hostlayout.AGENT_CONFIG} > {hostlayout.LOG_DIR}/server.log 2>&1 < /dev/null &")
        self._wait_log(m, "server.log", "dvp agent: node", 180)
        for w in self.nodes[1:]:
            out = f"{hostlayout.STATE_DIR}/join/{w.node}"
            m.sh(f"{DVP} join --data-dir {hostlayout.SERVER_DATA_DIR} --node-name {w.node} "
                 f"--node-ip {w.host.address} --out-dir {out}")
            for src, dst in (("kubeconfig", "agent.kubeconfig"), ("tls.crt", "agent-tls.crt"),
                             ("tls.key", "agent-tls.key")):
                w.write(f"{hostlayout.CONFIG_DIR}/{dst}", m.path(f"{out}/{src}").read_bytes(), mode=0o600)
            c = hostlayout.CONFIG_DIR
            w.write(hostlayout.AGENT_CONFIG, self._agent_config(
                w, **{"kubeconfig": f"{c}/agent.kubeconfig", "tls-cert-file": f"{c}/agent-tls.crt",
                      "tls-key-file": f"{c}/agent-tls.key", "node-name": w.node}))
            self.start_agent(w)
        deadline = time.monotonic() + 120
        while not self.ready_nodes() >= {n.node for n in self.nodes}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes not Ready: have {sorted(self.ready_nodes())}")
            time.sleep(0.5)

    def start_agent(self, w: LabNode) -> None:
        log = w.path(f"{hostlayout.LOG_DIR}/agent.log")
        seen = log.read_text(errors="replace").count("dvp agent: node") if log.exists() else 0
        done = w.sh(f"setsid {DVP} agent --config {hostlayout.AGENT_CONFIG} >> {hostlayout.LOG_DIR}/agent.log 2>&1 "
                    "< /dev/null & echo $!")
        self.agents[w.name] = int(done.stdout.split()[-1])  # a pid in the host's own PID namespace
        deadline = time.monotonic() + 120
        while (log.read_text(errors="replace").count("dvp agent: node") if log.exists() else 0) <= seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{w.name}: dvp agent not ready within 120s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop_agent(self, w: LabNode) -> None:
        """Kill the worker's agent (as a crash would): VMs, bridge, dnsmasq and routes stay."""
        pid = self.agents.pop(w.name)
        w.sh(f"kill -9 {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.1; done")

    def _wait_log(self, n: LabNode, name: str, line: str, timeout: float) -> None:
        log = n.path(f"{hostlayout.LOG_DIR}/{name}")
        deadline = time.monotonic() + timeout
        while line not in (log.read_text(errors="replace") if log.exists() else ""):
            if time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
                raise RuntimeError(f"{n.name}: no {line!r} in {name} within {timeout:.0f}s:\n{tail}")
            time.sleep(0.2)

    def kube(self) -> KubeClient:
        return KubeClient.from_kubeconfig(self.master.path(hostlayout.ADMIN_KUBECONFIG))

    def set_ready(self, n: LabNode, status: str) -> None:
        """Write the Node's Ready condition as the node lifecycle does when its Lease lapses."""
        kube = self.kube()
        node = kube.get(NODES, n.node)
        conds = [c for c in node["status"].get("conditions") or [] if c.get("type") != "Ready"]
        conds.append({"type": "Ready", "status": status, "reason": "NodeStatusUnknown" if status != "True" else
                      "KubeletReady", "message": "set by the test", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                      "lastTransitionTime": "2026-01-01T00:00:00Z"})
        node["status"]["conditions"] = conds
        kube.replace(NODES, node, subresource="status")

    def ready_nodes(self) -> set[str]:
        try:
            items = self.kube().list(NODES).get("items") or []
        except Exception:
            return set()
        return {o["metadata"]["name"] for o in items
                if any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in (o.get("status") or {}).get("conditions") or [])}

    # -- looking at a host -----------------------------------------------------------------------
    def routes(self, n: LabNode) -> dict[str, str]:
        return vm_routes(n)

    def http(self, n: LabNode, url: str, *, timeout: float = 3) -> str | None:
        return http(n, url, timeout=timeout)

    def log(self, n: LabNode) -> str:
        name = "server.log" if n is self.master else "agent.log"
        path = n.path(f"{hostlayout.LOG_DIR}/{name}")
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.lab.close()
