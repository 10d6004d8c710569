"""The upgrade plan: hosts in order, and per host what is backed up, replaced and restarted,
and what the VMs there will see. `--dry-run` prints it and changes nothing; the engine
executes exactly it.

The bundle is the `dvp` binary only: libvirt and QEMU are the host's packages and are not
replaced, so running VMs are never restarted or migrated — the node handler's restart leaves
domains running and adopts them. (A release that must replace QEMU/libvirt would plan a live
migration away from each node first, or, on a single node, name the VMs that restart and
require `--yes`; `Plan.vm_restarts` holds those and the CLI asks for them.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from installer import hostlayout
from installer.upgrade.bundle import Bundle
from installer.upgrade.platform import Platform

NODE_LABEL = "virtualization.deckhouse.io/node"


@dataclass
class HostPlan:
    name: str
    role: str
    node: str
    service: str
    steps: list[str]
    backed_up: list[str]
    replaced: list[str]
    restarted: list[str]
    vms: list[str]
    vm_impact: str


@dataclass
class Plan:
    from_version: str
    to_version: str
    from_data_version: int
    to_data_version: int
    bundle: str
    bundle_sha256: str
    replaces_hypervisor: bool = False
    hosts: list[HostPlan] = field(default_factory=list)
    vm_restarts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.from_version, "to": self.to_version, "dataVersion": {"from": self.from_data_version,
                                                                              "to": self.to_data_version},
            "bundle": self.bundle, "bundleSha256": self.bundle_sha256, "replacesHypervisor": self.replaces_hypervisor,
            "vmRestarts": self.vm_restarts, "notes": self.notes,
            "hosts": [{"name": h.name, "role": h.role, "node": h.node, "service": h.service, "steps": h.steps,
                       "backedUp": h.backed_up, "replaced": h.replaced, "restarted": h.restarted, "vms": h.vms,
                       "vmImpact": h.vm_impact} for h in self.hosts],
        }


def vms_by_node(instances: list[dict[str, Any]]) -> dict[str, list[str]]:
    """node -> running VM instances (namespace/name) placed there."""
    out: dict[str, list[str]] = {}
    for obj in instances:
        meta = obj.get("metadata") or {}
        node = (obj.get("spec") or {}).get("nodeName") or (meta.get("labels") or {}).get(NODE_LABEL, "")
        if (obj.get("status") or {}).get("phase") == "Running":
            out.setdefault(node, []).append(f"{meta.get('namespace')}/{meta.get('name')}")
    return {k: sorted(v) for k, v in out.items()}


def build_plan(platform: Platform, bundle: Bundle, *, from_version: str, from_data_version: int,
               instances: list[dict[str, Any]], backup_path: str) -> Plan:
    plan = Plan(from_version=from_version, to_version=bundle.version, from_data_version=from_data_version,
                to_data_version=bundle.data_version, bundle=str(bundle.path), bundle_sha256=bundle.sha256)
    placed = vms_by_node(instances)
    migrates = bundle.data_version > from_data_version
    for h in platform.hosts:
        vms = placed.get(h.node, [])
        backed = [f"{hostlayout.BINARY} -> {hostlayout.BINARY_PREVIOUS}"]
        steps = ["stage the bundle (checksum verified on the host)", f"keep {hostlayout.BINARY_PREVIOUS}"]
        if h.role == "master":
            backed.append(f"datastore -> {backup_path} (online, consistent)")
            steps.append("back up the datastore")
        else:
            steps.append(f"cordon Node {h.node}")
        steps += [f"replace {hostlayout.BINARY}", f"restart {h.service}"]
        if h.role == "master":
            steps.append("storage migrations data version "
                         f"{from_data_version} -> {bundle.data_version}" if migrates else "no storage migration")
            steps.append("wait: API ready, controllers leading, DVCR answering, Node Ready, VMs untouched")
        else:
            steps += ["wait: Node Ready on the new version, domains re-adopted and untouched", f"uncordon Node {h.node}"]
        impact = (f"{len(vms)} running VM(s) keep running: the {h.service} restart does not touch domains; "
                  "their consoles/VNC reconnect" if vms else "no running VMs")
        plan.hosts.append(HostPlan(name=h.name, role=h.role, node=h.node, service=h.service, steps=steps,
                                   backed_up=backed, replaced=[hostlayout.BINARY], restarted=[h.service], vms=vms,
                                   vm_impact=impact))
    plan.notes.append("binary-only bundle: libvirt and QEMU are not replaced, so no VM is migrated or restarted")
    if migrates:
        plan.notes.append(f"the new server migrates the datastore to data version {bundle.data_version}; a rollback "
                          "restores the backup")
    return plan
