"""Extra Node objects registered through the API of a real `dvp server`, for scheduler tests
that need several nodes but no VM to run: each Node is created with its labels, its status
(Ready, allocatable CPU and memory) is patched through the status subresource as a node handler
does, and its Lease in `kube-node-lease` is renewed from a thread while the node is "up" — the
node lifecycle controller then sees a live node. `down(name)` stops renewing (the node handler
gone); `up(name)` resumes; `skew[name]` puts the node's clock off. No VM runs on these nodes: placement decisions only."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterable
from typing import Any

from tests.services.apiserver import ApiServerProcess

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON = {"Content-Type": "application/json"}


def _now(skew: float = 0.0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=skew)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeNodes:
    def __init__(self, server: ApiServerProcess, *, renew_every: float = 2.0) -> None:
        self.server = server
        self.renew_every = renew_every
        self.alive: set[str] = set()
        self.skew: dict[str, float] = {}
        """Seconds a node's clock is off (its Lease renewTime is stamped with it)."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._renew_loop, name="fake-node-leases", daemon=True)
        self._thread.start()
        self._call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "kube-node-lease"}}, ok=(201, 409))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None,
              ok: Iterable[int] = (200, 201)) -> dict[str, Any]:
        code, out = self.server.raw(method, path, json.dumps(body).encode() if body is not None else None,
                                    headers=headers or JSON)
        if code not in tuple(ok):
            raise AssertionError(f"{method} {path}: {code} {out.decode(errors='replace')[:500]}")
        result: dict[str, Any] = json.loads(out) if out else {}
        return result

    def add(self, name: str, *, cpu: str = "8", memory: str = "8Gi", labels: dict[str, str] | None = None,
            conditions: list[dict[str, Any]] | None = None) -> None:
        self._call("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {"kubernetes.io/hostname": name, "virtualization.deckhouse.io/kvm": "true",
                                     **(labels or {})}}}, ok=(201,))
        now = _now()[:19] + "Z"
        conds = [{"type": "Ready", "status": "True", "reason": "NodeHandlerReady", "message": "test node",
                  "lastHeartbeatTime": now, "lastTransitionTime": now}, *(conditions or [])]
        self.set_status(name, {"capacity": {"cpu": cpu, "memory": memory, "pods": "0"},
                               "allocatable": {"cpu": cpu, "memory": memory, "pods": "0"}, "conditions": conds})
        self.renew(name)
        with self._lock:
            self.alive.add(name)

    def set_status(self, name: str, status: dict[str, Any]) -> None:
        self._call("PATCH", f"/api/v1/nodes/{name}/status", {"status": status}, headers=MERGE)

    def renew(self, name: str) -> None:
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": _now(self.skew.get(name, 0.0))}
        code, _ = self.server.raw("PATCH", f"{LEASES}/{name}", json.dumps({"spec": spec}).encode(), headers=MERGE)
        if code == 404:
            self._call("POST", LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                        "metadata": {"name": name, "namespace": "kube-node-lease"},
                                        "spec": {**spec, "acquireTime": spec["renewTime"]}}, ok=(201, 409))

    def down(self, name: str) -> None:
        with self._lock:
            self.alive.discard(name)

    def up(self, name: str) -> None:
        self.renew(name)
        with self._lock:
            self.alive.add(name)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every):
            with self._lock:
                names = sorted(self.alive)
            for name in names:
                with contextlib.suppress(Exception):  # a server restarting: the next round renews
                    self.renew(name)

    def stop(self) -> None:
        self._stop.set()
