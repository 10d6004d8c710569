"""`dvp v top`: CPU and memory each VM uses now, as `kubectl top pod` shows for pods. The
figures are the ones node handlers publish on their Nodes (`controlplane.api.nodemetrics`,
rates over the last ~10 s), read through the API with the user's kubeconfig."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from controlplane.api.nodemetrics import NodeUsage
from controlplane.cli.connection import Connection


@dataclass(frozen=True)
class VMUsage:
    namespace: str
    name: str
    node: str
    timestamp: str
    window: float
    cpu_nanocores: int
    memory_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "node": self.node, "timestamp": self.timestamp,
                "window": f"{self.window:g}s",
                "usage": {"cpu": f"{self.cpu_nanocores}n", "memory": f"{self.memory_bytes // 1024}Ki"}}


def _get(conn: Connection, path: str) -> Any:
    req = urllib.request.Request(conn.server + path, headers=conn.headers)
    with urllib.request.urlopen(req, context=conn.ssl, timeout=30) as resp:
        return json.loads(resp.read())


def collect(conn: Connection, *, all_namespaces: bool, name: str | None) -> list[VMUsage]:
    out = []
    for node in _get(conn, "/api/v1/nodes").get("items") or []:
        usage = NodeUsage.of_node(node)
        if usage is None:
            continue
        for key, u in usage.vms.items():
            ns, _, vm = key.partition("/")
            if (not all_namespaces and ns != conn.namespace) or (name and vm != name):
                continue
            out.append(VMUsage(ns, vm, node["metadata"]["name"], usage.timestamp, usage.window, u.cpu_nanocores,
                               u.memory_bytes))
    return sorted(out, key=lambda u: (u.namespace, u.name))


def table(rows: list[VMUsage], *, all_namespaces: bool) -> str:
    head = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "NODE", "CPU(cores)", "MEMORY(bytes)"]
    body = [([r.namespace] if all_namespaces else []) + [r.name, r.node, f"{r.cpu_nanocores // 1_000_000}m",
                                                           f"{r.memory_bytes // 1024**2}Mi"] for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=False)]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip()
                     for line in [head, *body])


def show(conn: Connection, *, all_namespaces: bool, name: str | None, output: str) -> int:
    try:
        rows = collect(conn, all_namespaces=all_namespaces, name=name)
    except urllib.error.HTTPError as exc:
        print(f"error: reading nodes from {conn.server}: {exc.code} {exc.reason}")
        return 1
    if output == "json":
        print(json.dumps({"items": [r.to_json() for r in rows]}, indent=1))
        return 0
    if not rows:
        where = "in any namespace" if all_namespaces else f"in namespace {conn.namespace}"
        print(f"No usage published for {'VM ' + name if name else 'running VMs'} {where} "
              "(node handlers publish it every 10 s).")
        return 1 if name else 0
    print(table(rows, all_namespaces=all_namespaces))
    return 0
