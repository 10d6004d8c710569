"""Hosts taken out of the install config: `dvp install` run again without a host that an earlier
run joined. Its Node is still in the API, and VMs may run there; removing the host from the
platform then would strand them. So before anything changes (at the end of the preflight), the
install asks the API which Nodes are no longer among the config's hosts and which VMs (the
internal instances the controllers place on a node) each still runs, and refuses naming the
host and the VMs. A removed host without VMs only earns a note on how to clear it away.

The next issue (live migration) turns the refusal into a drain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer.install.verify import api_reader

INSTANCES_PATH = "/apis/internal.virtualization.deckhouse.io/v1/internalvirtualmachineinstances"
NODE_LABEL = "virtualization.deckhouse.io/node"
"""The label the controllers set on every instance: the node that runs it (controlplane/api/internal.py)."""


@dataclass(frozen=True)
class RemovedNode:
    name: str
    address: str
    vms: list[str]

    def describe(self) -> str:
        where = f"node {self.name}" + (f" (host {self.address})" if self.address else "")
        if not self.vms:
            return where
        return f"{where} still runs {len(self.vms)} VM(s): {', '.join(self.vms)}"


def _address(node: dict[str, Any]) -> str:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP":
            return str(addr.get("address", ""))
    return ""


def removed_nodes(kubeconfig: Path, expected: list[str]) -> list[RemovedNode]:
    """Nodes the API knows that are not among `expected` (the config's hosts' node names), each
    with the VMs placed there (`namespace/name`)."""
    api = api_reader(kubeconfig)
    keep = set(expected)
    out = []
    for node in api.get("/api/v1/nodes").get("items", []):
        name = str(node["metadata"]["name"])
        if name in keep:
            continue
        instances = api.get(f"{INSTANCES_PATH}?labelSelector={NODE_LABEL}%3D{name}").get("items", [])
        vms = sorted(f"{i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in instances)
        out.append(RemovedNode(name, _address(node), vms))
    return out


def refusal(removed: list[RemovedNode]) -> str | None:
    """The install's error when a removed host still runs VMs (None: nothing stops it)."""
    busy = [r for r in removed if r.vms]
    if not busy:
        return None
    return ("hosts removed from the config still run VMs: " + "; ".join(r.describe() for r in busy)
            + "; stop or delete those VMs first (live migration will drain a host once it exists), "
              "or put the host back under hosts:")


def notes(removed: list[RemovedNode]) -> list[str]:
    """What to do about removed hosts that run nothing."""
    return [f"{r.describe()} is no longer in the config and runs no VMs: run `dvp uninstall` on that host, then "
            f"`kubectl delete node {r.name}`" for r in removed if not r.vms]
