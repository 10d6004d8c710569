"""What a VirtualMachinePool should do next, as pure functions of the pool and its members.

The controller (`vmpool.controller`) reads the pool and the VirtualMachines it controls from
the caches, asks `plan` how many members to create and which to delete, builds new members
with `member`/`member_disks`, and writes what `observe` reports as the pool's status. No I/O
here, so the scaling policy is tested as a table.

DVP's rules, kept: members are named `<pool>-<5 random characters>` (DVP's generateName);
they carry the pool-uid label (the member selector, published in `status.selector` for the
scale subresource), the pool-name label and the template-hash label of the template they
were made from; a Terminating member still counts as a member (it holds capacity), so it
is never replaced early; an anonymous scale-down removes the youngest members first
(`NewestFirst`), the oldest (`OldestFirst`), or none (`Explicit`: members are removed by name).
"""

from __future__ import annotations

import copy
import random
import string
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from controlplane.api.v1alpha2 import API_VERSION, Kind

LABEL_POOL_UID = "vmpool.virtualization.deckhouse.io/pool-uid"
LABEL_POOL = "vmpool.virtualization.deckhouse.io/pool"
LABEL_TEMPLATE_HASH = "vmpool.virtualization.deckhouse.io/template-hash"
LABEL_DISK_TEMPLATE = "vmpool.virtualization.deckhouse.io/disk-template"
NEWEST_FIRST, OLDEST_FIRST, EXPLICIT = "NewestFirst", "OldestFirst", "Explicit"
AWAITING_RESTART = "AwaitingRestartToApplyConfiguration"
_SUFFIX = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Member:
    """One VirtualMachine of the pool, as far as scaling cares."""

    name: str
    created: str  # metadata.creationTimestamp (RFC 3339 sorts as time)
    terminating: bool = False
    running: bool = False
    template_hash: str = ""
    restart_pending: bool = False
    """Its VM says AwaitingRestartToApplyConfiguration: a rolled-out template waits for a restart."""

    @classmethod
    def of(cls, vm: dict[str, Any]) -> Member:
        meta = vm.get("metadata") or {}
        conditions = (vm.get("status") or {}).get("conditions") or []
        return cls(name=str(meta.get("name") or ""), created=str(meta.get("creationTimestamp") or ""),
                   terminating=bool(meta.get("deletionTimestamp")),
                   running=(vm.get("status") or {}).get("phase") == "Running",
                   template_hash=str((meta.get("labels") or {}).get(LABEL_TEMPLATE_HASH) or ""),
                   restart_pending=any(c.get("type") == AWAITING_RESTART and c.get("status") == "True"
                                       for c in conditions if isinstance(c, dict)))


@dataclass(frozen=True)
class Plan:
    create: int
    delete: list[str]


def plan(desired: int, policy: str, members: list[Member], targets: list[str] | None = None) -> Plan:
    """How many members to create and which to delete to reach `desired`. The members
    `scaledownwith` named (`targets`) go first, whatever the policy; then, for an anonymous
    scale-down, the policy picks (Explicit: none)."""
    live = len(members)
    if live < desired:
        return Plan(create=desired - live, delete=[])
    terminating = sum(1 for m in members if m.terminating)
    surplus = live - desired - terminating  # Terminating members already count toward the reduction
    if surplus <= 0:
        return Plan(create=0, delete=[])
    candidates = [m for m in members if not m.terminating]
    named = [m.name for m in candidates if m.name in (targets or [])][:surplus]
    if policy not in (NEWEST_FIRST, OLDEST_FIRST):
        return Plan(create=0, delete=named)
    # NewestFirst: youngest first; OldestFirst: oldest first. Name breaks ties (same second).
    ordered = sorted((m for m in candidates if m.name not in named), key=lambda m: (m.created, m.name),
                     reverse=policy == NEWEST_FIRST)
    return Plan(create=0, delete=named + [m.name for m in ordered[:surplus - len(named)]])


def template_hash(pool: dict[str, Any]) -> str:
    """A short stable hash of `spec.virtualMachineTemplate`: the revision members converge to."""
    template = (pool.get("spec") or {}).get("virtualMachineTemplate") or {}
    return f"{zlib.crc32(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)):08x}"


def selector(pool: dict[str, Any]) -> str:
    """The member selector as the scale subresource publishes it (`status.selector`)."""
    return f"{LABEL_POOL_UID}={(pool.get('metadata') or {}).get('uid') or ''}"


def new_name(pool_name: str) -> str:
    return f"{pool_name}-{''.join(random.choices(_SUFFIX, k=5))}"


def disk_name(member: str, disk_template: str) -> str:
    """A per-member disk: `<member>-<virtualDiskTemplates[].name>` (DVP's naming)."""
    return f"{member}-{disk_template}"


def _owner(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": API_VERSION, "kind": kind, "name": meta["name"], "uid": meta.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def member(pool: dict[str, Any], name: str, retained: dict[str, str] | None = None) -> dict[str, Any]:
    """A new member: the template's labels, annotations and spec, the pool labels on top, an
    owner reference to the pool (controller), and the template's VirtualDisk references
    pointed at the member's own disks — or, for a Retain template, at the pool's disk
    `retained[template]` handed to it (`retain.py`)."""
    meta = pool["metadata"]
    template = (pool.get("spec") or {}).get("virtualMachineTemplate") or {}
    tmeta = template.get("metadata") or {}
    labels = {**(tmeta.get("labels") or {}), LABEL_POOL_UID: str(meta.get("uid") or ""), LABEL_POOL: meta["name"],
              LABEL_TEMPLATE_HASH: template_hash(pool)}
    spec = copy.deepcopy(template.get("spec") or {})
    per_member = {t["name"] for t in (pool.get("spec") or {}).get("virtualDiskTemplates") or []}
    for ref in spec.get("blockDeviceRefs") or []:
        if ref.get("kind") == Kind.VIRTUAL_DISK and ref.get("name") in per_member:
            ref["name"] = (retained or {}).get(ref["name"]) or disk_name(name, ref["name"])
    vm_meta: dict[str, Any] = {"name": name, "namespace": meta.get("namespace", ""), "labels": labels,
                               "ownerReferences": [_owner(pool, Kind.VIRTUAL_MACHINE_POOL)]}
    if tmeta.get("annotations"):
        vm_meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": API_VERSION, "kind": Kind.VIRTUAL_MACHINE, "metadata": vm_meta, "spec": spec}


def rolled(pool: dict[str, Any], vm: dict[str, Any]) -> dict[str, Any]:
    """An existing member brought to the pool's current template, in place (as DVP rolls a
    template change out): the template's spec, the template's labels and annotations over the
    member's own, the new template hash. Its devices (`blockDeviceRefs`) stay as they are, as
    DVP keeps a live replica's devices until it is recreated; its name, owner and
    resourceVersion stay; a running member applies the new spec at its next restart
    (AwaitingRestartToApplyConfiguration), as any VM edited while it runs."""
    fresh = member(pool, vm["metadata"]["name"])
    out = copy.deepcopy(vm)
    meta = out["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), **fresh["metadata"]["labels"]}
    if fresh["metadata"].get("annotations"):
        meta["annotations"] = {**(meta.get("annotations") or {}), **fresh["metadata"]["annotations"]}
    devices = (vm.get("spec") or {}).get("blockDeviceRefs")
    out["spec"] = fresh["spec"]
    if devices is not None:
        out["spec"]["blockDeviceRefs"] = copy.deepcopy(devices)
    out.pop("status", None)
    return out


def _disk(pool: dict[str, Any], template: dict[str, Any], name: str, owner: dict[str, Any], kind: str
          ) -> dict[str, Any]:
    meta = pool["metadata"]
    labels = {LABEL_POOL_UID: str(meta.get("uid") or ""), LABEL_POOL: meta["name"], LABEL_DISK_TEMPLATE: template["name"]}
    return {"apiVersion": API_VERSION, "kind": Kind.VIRTUAL_DISK,
            "metadata": {"name": name, "namespace": meta.get("namespace", ""), "labels": labels,
                         "ownerReferences": [_owner(owner, kind)]},
            "spec": copy.deepcopy(template.get("spec") or {})}


def member_disks(pool: dict[str, Any], vm: dict[str, Any]) -> list[dict[str, Any]]:
    """The member's own disks, one per `virtualDiskTemplates` entry whose reclaim is Delete,
    owned by the member so they go with it (Retain disks are the pool's: `pool_disk`)."""
    return [_disk(pool, t, disk_name(vm["metadata"]["name"], t["name"]), vm, Kind.VIRTUAL_MACHINE)
            for t in (pool.get("spec") or {}).get("virtualDiskTemplates") or []
            if ((t.get("reclaim") or {}).get("onScaleDown") or "Delete") != "Retain"]


def pool_disk(pool: dict[str, Any], template: dict[str, Any], name: str) -> dict[str, Any]:
    """A Retain disk: owned by the pool, so it outlives the member that uses it."""
    return _disk(pool, template, name, pool, Kind.VIRTUAL_MACHINE_POOL)


@dataclass(frozen=True)
class Observed:
    replicas: int
    ready: int
    updated: int
    live: int  # not Terminating
    restart_pending: int = 0

    @classmethod
    def of(cls, members: list[Member], desired_hash: str) -> Observed:
        live = [m for m in members if not m.terminating]
        return cls(replicas=len(members), ready=sum(1 for m in live if m.running),
                   updated=sum(1 for m in live if m.template_hash == desired_hash), live=len(live),
                   restart_pending=sum(1 for m in live if m.restart_pending))
