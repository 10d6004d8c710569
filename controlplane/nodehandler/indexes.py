"""Indexes of the node handler's instance cache, so an event maps to the instances it affects
without scanning them all: a domain event (by uid), a volume event (by the volumes an
instance's disks name) and the address check of a starting instance (by IP and MAC).
`register` adds them to the informer before it starts; the informer keeps them current."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controlplane.common.kube.informer import Informer

BY_UID = "uid"
BY_VOLUME = "volume"
BY_ADDRESS = "address"


def _uid(obj: dict[str, Any]) -> Iterable[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [str(uid)] if uid else []


def _volumes(obj: dict[str, Any]) -> Iterable[str]:
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    return {f"{ns}/{name}" for d in (obj.get("spec") or {}).get("disks") or []
            if (name := (d.get("volume") or {}).get("name"))}


def address(kind: str, value: str) -> str:
    """Index value of an address: `ip:10.66.0.5`, `mac:52:54:00:...` (MACs lower-case)."""
    return f"{kind}:{value.lower() if kind == 'mac' else value}"


def _addresses(obj: dict[str, Any]) -> Iterable[str]:
    out: set[str] = set()
    for nic in (obj.get("spec") or {}).get("nics") or []:
        if nic.get("ip"):
            out.add(address("ip", str(nic["ip"])))
        if nic.get("mac"):
            out.add(address("mac", str(nic["mac"])))
    return out


def register(instances: Informer) -> None:
    instances.add_index(BY_UID, _uid)
    instances.add_index(BY_VOLUME, _volumes)
    instances.add_index(BY_ADDRESS, _addresses)
