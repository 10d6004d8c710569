"""Helpers of the node handler's integration tests: instance and volume manifests, waiting on
status, reading a VM's serial log from a given offset (so a restart's new marker is told apart
from the old one), and a websocket client for the console endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from controlplane.api.internal import API_VERSION, INSTANCE_KIND, NODE_LABEL, VOLUME_KIND
from controlplane.common.kube.client import NAMESPACES, KubeClient, KubeError
from controlplane.nodehandler.context import INSTANCES, VOLUMES
from tests.services.guests import Marker, parse_marker, read_log
from tests.services.nodeagent import NodeAgentProcess

T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = fn()
        except KubeError as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s (last error: {last})")
        time.sleep(every)


def instance(name: str, node: str, *, disks: list[dict[str, Any]] | None = None,
             nics: list[dict[str, Any]] | None = None, user_data: str | None = None, run_state: str = "Running",
             grace: int = 20, paravirtualization: bool = True, memory: str = "256Mi", namespace: str = "default",
             **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nodeName": node, "runState": run_state, "cpu": {"cores": 1}, "memory": {"size": memory},
        "disks": disks or [], "nics": nics or [], "shutdownGracePeriodSeconds": grace,
        "paravirtualization": paravirtualization, **spec,
    }
    if user_data is not None:
        body["cloudInit"] = {"userData": user_data}
    return {"apiVersion": API_VERSION, "kind": INSTANCE_KIND,
            "metadata": {"name": name, "namespace": namespace, "labels": {NODE_LABEL: node}}, "spec": body}


def volume(name: str, node: str, size: str, *, image_ref: str | None = None,
           namespace: str = "default") -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "size": size}
    if image_ref:
        spec["source"] = {"image": {"ref": image_ref}}
    return {"apiVersion": API_VERSION, "kind": VOLUME_KIND,
            "metadata": {"name": name, "namespace": namespace, "labels": {NODE_LABEL: node}}, "spec": spec}


@dataclass
class NodeEnv:
    kube: KubeClient
    agent: NodeAgentProcess
    image: Path
    """The guest image (qcow2) volumes are copied from."""
    node_name: str = ""

    @property
    def node(self) -> str:
        return self.node_name or self.agent.node

    def ensure_namespace(self, name: str) -> str:
        if self.kube.get_or_none(NAMESPACES, name) is None:
            self.kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name

    def create_instance(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.kube.create(INSTANCES, obj)

    def create_volume(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.kube.create(VOLUMES, obj)

    def get(self, name: str, namespace: str = "default") -> dict[str, Any]:
        return self.kube.get(INSTANCES, name, namespace)

    def volume_ready(self, name: str, namespace: str = "default", *, timeout: float = 60) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            obj = self.kube.get(VOLUMES, name, namespace)
            return obj if (obj.get("status") or {}).get("phase") == "Ready" else None
        return wait_for(ready, timeout=timeout, what=f"volume {namespace}/{name} Ready")

    def boot_volume(self, name: str, namespace: str = "default", *, size: str = "64Mi",
                    image: Path | None = None) -> dict[str, Any]:
        self.create_volume(volume(name, self.node, size, image_ref=f"file://{image or self.image}",
                                  namespace=namespace))
        return self.volume_ready(name, namespace)

    def wait_status(self, name: str, pred: Callable[[dict[str, Any]], bool], *, namespace: str = "default",
                    timeout: float = 30, what: str = "") -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = self.get(name, namespace)
            return obj if pred(obj.get("status") or {}) else None
        try:
            return wait_for(check, timeout=timeout, what=what or f"status of {namespace}/{name}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; status now: {self.get(name, namespace).get('status')}") from exc

    def wait_phase(self, name: str, phase: str, *, namespace: str = "default", timeout: float = 30) -> dict[str, Any]:
        return self.wait_status(name, lambda s: s.get("phase") == phase, namespace=namespace, timeout=timeout,
                                what=f"{namespace}/{name} phase {phase}")

    def serial(self, uid: str) -> Path:
        return self.agent.serial_log(uid)

    def serial_size(self, uid: str) -> int:
        path = self.serial(uid)
        return path.stat().st_size if path.exists() else 0

    def wait_marker(self, uid: str, *, after: int = 0, timeout: float = 90) -> Marker:
        path = self.serial(uid)

        def found() -> Marker | None:
            return parse_marker(read_log_from(path, after))
        try:
            return wait_for(found, timeout=timeout, what=f"guest marker in {path}", every=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; serial log tail:\n{read_log(path)[-1500:]}\nagent log tail:\n"
                               f"{self.agent.log_text()[-3000:]}") from exc

    def power(self, name: str, action: str, *, force: bool = False, grace: int | None = None,
              namespace: str = "default") -> str:
        rid = f"{action.lower()}-{time.monotonic_ns()}"
        req: dict[str, Any] = {"id": rid, "action": action, "force": force}
        if grace is not None:
            req["gracePeriodSeconds"] = grace
        self.kube.patch(INSTANCES, name, {"spec": {"powerRequest": req}}, namespace)
        return rid


def read_log_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace").replace("\r", "")
    except FileNotFoundError:
        return ""
