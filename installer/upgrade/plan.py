"""The upgrade plan: hosts in order, and per host what is backed up, replaced and restarted,
and what the VMs there will see. `--dry-run` prints it and changes nothing; the engine
executes exactly it.

The bundle is the `dvp` binary only: libvirt and QEMU are the host's packages and are not
replaced, so running VMs are never restarted or migrated — the node handler's restart leaves
domains running and adopts them. (A release that must replace QEMU/libvirt would plan a live
migration away from each node first, or, on a single node, name the VMs that restart and
require `--yes`; `Plan.vm_restarts` holds those and the CLI asks for them.)

With `--reboot` each host is rebooted after its binary is replaced: on several hosts each is
cordoned and drained first (its VMs move live, to hosts already upgraded when they can take
them) and uncordoned when its Node is Ready on the new version; a single host cannot move its
VMs, so they are listed in `vm_restarts`. When the new server also migrates the datastore, the
reboots come in a second pass, after every host runs the new version (installer/upgrade/engine.py):
each host's steps list both passes.
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
    reboot_command: str | None = None
    hosts: list[HostPlan] = field(default_factory=list)
    vm_restarts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.from_version, "to": self.to_version, "dataVersion": {"from": self.from_data_version,
                                                                              "to": self.to_data_version},
            "bundle": self.bundle, "bundleSha256": self.bundle_sha256, "replacesHypervisor": self.replaces_hypervisor,
            "reboot": self.reboot_command is not None, "rebootCommand": self.reboot_command,
            "vmRestarts": self.vm_restarts, "notes": self.notes,
            "hosts": [{"name": h.name, "role": h.role, "node": h.node, "service": h.service, "steps": h.steps,
                       "backedUp": h.backed_up, "replaced": h.replaced, "restarted": h.restarted, "vms": h.vms,
                       "vmImpact": h.vm_impact} for h in self.hosts],
        }


def reboot_passes(*, reboot: bool, hosts: int, migrates: bool) -> tuple[bool, bool]:
    """(two passes, drains in the first pass) of an upgrade: a `--reboot` of several hosts drains
    each host as it is upgraded, unless the new server migrates the datastore; then the reboots
    (and their drains) come in a second pass (installer/upgrade/engine.py). Both the plan and the
    engine decide by this."""
    several = reboot and hosts > 1
    return several and migrates, several and not migrates


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
               instances: list[dict[str, Any]], backup_path: str, reboot_command: str | None = None) -> Plan:
    """The plan; `reboot_command` set means `--reboot` (every host rebooted with it)."""
    plan = Plan(from_version=from_version, to_version=bundle.version, from_data_version=from_data_version,
                to_data_version=bundle.data_version, bundle=str(bundle.path), bundle_sha256=bundle.sha256,
                reboot_command=reboot_command)
    placed = vms_by_node(instances)
    migrates = bundle.data_version > from_data_version
    reboot, several = reboot_command is not None, len(platform.hosts) > 1
    two_pass, moves = reboot_passes(reboot=reboot, hosts=len(platform.hosts), migrates=migrates)
    done: list[str] = []
    for h in platform.hosts:
        vms = placed.get(h.node, [])
        backed = [f"{hostlayout.BINARY} -> {hostlayout.BINARY_PREVIOUS}"]
        steps = ["stage the bundle (checksum verified on the host; every host at once, before any host changes)",
                 f"keep {hostlayout.BINARY_PREVIOUS}"]
        if h.role == "master":
            backed.append(f"datastore -> {backup_path} (online, consistent)")
            steps.append("back up the datastore")
        if h.role != "master" or moves:
            steps.append(f"cordon Node {h.node}")
        to = f"upgraded nodes ({', '.join(done)}) first" if done else "the other nodes (none upgraded yet)"
        if moves:
            steps.append(f"drain: move {len(vms)} running VM(s) live to {to}")
        steps.append(f"replace {hostlayout.BINARY}")
        steps.append(f"reboot the host ({reboot_command}), wait for SSH" if reboot and not two_pass
                     else f"restart {h.service}")
        if h.role == "master":
            steps.append("storage migrations data version "
                         f"{from_data_version} -> {bundle.data_version}" if migrates else "no storage migration")
            steps.append("wait: API ready, controllers leading, DVCR answering, Node Ready, VMs untouched")
            if moves:
                steps.append(f"uncordon Node {h.node}")
        else:
            steps += ["wait: Node Ready on the new version" + ("" if moves else ", domains re-adopted and untouched"),
                      f"uncordon Node {h.node}"]
        if two_pass:
            steps += [f"pass 2: cordon Node {h.node}",
                      f"pass 2: drain: move {len(vms)} running VM(s) live to rebooted nodes first",
                      f"pass 2: reboot the host ({reboot_command}), wait for SSH",
                      "pass 2: wait: Node Ready on the new version", f"pass 2: uncordon Node {h.node}"]
        if not vms:
            impact = "no running VMs"
        elif reboot and several:
            impact = f"{len(vms)} running VM(s) move live to another host before the reboot; guests keep running"
        elif reboot:
            impact = f"{len(vms)} running VM(s) RESTART with the host: no other host to move them to"
            plan.vm_restarts += vms
        else:
            impact = (f"{len(vms)} running VM(s) keep running: the {h.service} restart does not touch domains; "
                      "their consoles/VNC reconnect")
        done.append(h.node)
        plan.hosts.append(HostPlan(name=h.name, role=h.role, node=h.node, service=h.service, steps=steps,
                                   backed_up=backed, replaced=[hostlayout.BINARY], restarted=[h.service], vms=vms,
                                   vm_impact=impact))
    if two_pass:
        plan.notes.append("--reboot with a storage migration: pass 1 upgrades every host's binary with its VMs in "
                          "place (a failure rolls back, the datastore backup included); pass 2 then drains (VMs move "
                          "live), reboots and uncordons each host, and a failure there is not rolled back: the "
                          "upgrade is finished by running it again")
    elif reboot:
        plan.notes.append("--reboot: each host is rebooted after its binary is replaced" + (
            ", drained first (VMs move live) and uncordoned once its Node is Ready on the new version"
            if several else "; its VMs restart"))
    else:
        plan.notes.append("binary-only bundle: libvirt and QEMU are not replaced, so no VM is migrated or restarted")
    if migrates:
        plan.notes.append(f"the new server migrates the datastore to data version {bundle.data_version}; a rollback "
                          "restores the backup")
    return plan
