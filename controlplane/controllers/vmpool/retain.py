"""Reusable pool disks (`virtualDiskTemplates[].reclaim.onScaleDown: Retain`), as DVP's guide
describes them: such a disk belongs to the pool, not to a replica; it is named
`<pool>-<template>-<5 random>`, survives its replica, and is reattached to the next replica a
scale-up makes (the most recently freed first). Free disks beyond the `keep` most recently freed
are deleted once they have been free for `ttl`; without `ttl` they are kept for good.

Pure decisions over the pool's Retain disks and its members' device references; the controller
(`vmpool.controller`) acts on them. A disk's freeing time is its `freed-at` annotation, set by the
controller the first time it sees the disk free.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
from typing import Any

from controlplane.api.v1alpha2 import Kind

FREED_AT = "vmpool.virtualization.deckhouse.io/freed-at"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def retain_templates(pool: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pool's Retain disk templates by name."""
    return {t["name"]: t for t in (pool.get("spec") or {}).get("virtualDiskTemplates") or []
            if ((t.get("reclaim") or {}).get("onScaleDown") or "Delete") == "Retain"}


def new_disk_name(pool_name: str, template: str) -> str:
    return f"{pool_name}-{template}-{''.join(random.choices('abcdefghijklmnopqrstuvwxyz0123456789', k=5))}"


def parse_duration(text: str) -> float | None:
    """Seconds of a Go-style duration (`30m`, `1h30m`, `90s`); None when it is not one."""
    text = text.strip()
    if not text or _DURATION.sub("", text):
        return None
    return sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))


@dataclass(frozen=True)
class Disk:
    name: str
    template: str
    freed_at: str  # RFC 3339, "" while not known to be free
    terminating: bool = False


def in_use(members: list[dict[str, Any]]) -> set[str]:
    """The VirtualDisk names the pool's members (being deleted or not) refer to."""
    return {str(ref.get("name")) for vm in members for ref in (vm.get("spec") or {}).get("blockDeviceRefs") or []
            if ref.get("kind") == Kind.VIRTUAL_DISK}


def free(disks: list[Disk], used: set[str], template: str) -> list[Disk]:
    """Free disks of a template, the most recently freed first (unknown times: newest)."""
    out = [d for d in disks if d.template == template and d.name not in used and not d.terminating]
    return sorted(out, key=lambda d: d.freed_at or "~", reverse=True)


def expired(disks: list[Disk], used: set[str], template: dict[str, Any], now: dt.datetime) -> list[str]:
    """Free disks past their `ttl`, beyond the `keep` most recently freed."""
    reclaim = template.get("reclaim") or {}
    ttl = parse_duration(str(reclaim.get("ttl") or ""))
    if ttl is None:
        return []
    spare = free(disks, used, template["name"])[int(reclaim.get("keep") or 0):]
    out = []
    for d in spare:
        if d.freed_at:
            freed = dt.datetime.fromisoformat(d.freed_at.replace("Z", "+00:00"))
            if (now - freed).total_seconds() >= ttl:
                out.append(d.name)
    return out
