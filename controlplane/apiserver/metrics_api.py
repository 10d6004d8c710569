"""`metrics.k8s.io/v1beta1`, the resource metrics API that `kubectl top` reads: NodeMetrics
from what each node handler publishes on its Node (`controlplane.api.nodemetrics`), and
PodMetrics as an empty list (this platform runs VMs, not pods; `dvp v top` shows VMs).

metrics-server serves this group on a real cluster by scraping kubelets; here the figures
are already in the datastore, so a request is a read of the Node objects.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controlplane.api.nodemetrics import NodeUsage
from controlplane.apiserver import errors
from controlplane.apiserver.auth import User
from controlplane.apiserver.handlers import json_response
from controlplane.apiserver.routing import Target
from controlplane.apiserver.selectors import LabelSelector
from controlplane.apiserver.storage import Store

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
RESOURCES: list[dict[str, Any]] = [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
]
NODES = "/nodes"


def node_metrics(node: dict[str, Any]) -> dict[str, Any] | None:
    usage = NodeUsage.of_node(node)
    if usage is None:
        return None
    meta = node["metadata"]
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION,
            "metadata": {"name": meta["name"], "creationTimestamp": usage.timestamp,
                         "labels": meta.get("labels") or {}},
            "timestamp": usage.timestamp, "window": f"{usage.window:g}s",
            "usage": {"cpu": usage.node.cpu_quantity(), "memory": usage.node.memory_quantity()}}


def handler(store: Store) -> Any:
    async def handle(request: web.Request, target: Target, _user: User) -> web.StreamResponse:
        if request.method != "GET" or target.subresource:
            raise errors.method_not_allowed(request.method, f"{target.plural}.{GROUP}")
        if target.plural == "pods":
            if target.name:
                raise errors.not_found("pods", GROUP, target.name)
            return json_response({"kind": "PodMetricsList", "apiVersion": API_VERSION, "metadata": {}, "items": []})
        if target.plural != "nodes":
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if target.name:
            stored = store.get(NODES, f"/{target.name}")
            found = node_metrics(stored.obj) if stored is not None else None
            if found is None:
                raise errors.not_found("nodes", GROUP, target.name)
            return json_response(found)
        text = request.query.get("labelSelector", "")
        selector = LabelSelector(text) if text else None
        items = []
        for _key, stored in store.items(NODES):
            if selector is not None and not selector.matches(stored.obj):
                continue
            found = node_metrics(stored.obj)
            if found is not None:
                items.append(found)
        return json_response({"kind": "NodeMetricsList", "apiVersion": API_VERSION, "metadata": {}, "items": items})

    return handle
