"""The live migration contract between the VMOP controller, the VM controller and node handlers:
one typed model, parsed and built here.

- instance `spec.migration` (written by the VMOP controller, removed to cancel):
  `{id, targetNode, targetAddress, autoConverge, timeoutSeconds}`;
- instance `status.migration` (written by the source node handler while it migrates, and at the
  switch-over): `{id, phase, sourceNode, targetNode, startTimestamp, endTimestamp, result, reason,
  message, progress, downtimeMilliseconds}`;
- DVP's `spec.liveMigrationPolicy` and the VMOP's `force` -> whether auto-converge is used;
- the limits DVP documents: one outgoing and one incoming migration per node, and a cluster cap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DEFAULT_CLUSTER_CAP = 4
"""Migrations in flight in the whole cluster at most (besides one out and one in per node)."""


class LiveMigrationPolicy(StrEnum):
    ALWAYS_SAFE = "AlwaysSafe"
    PREFER_SAFE = "PreferSafe"
    ALWAYS_FORCED = "AlwaysForced"
    PREFER_FORCED = "PreferForced"


class MigrationPhase(StrEnum):
    PENDING = "Pending"
    PREPARING = "Preparing"
    MIGRATING = "Migrating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


TERMINAL = frozenset({MigrationPhase.SUCCEEDED, MigrationPhase.FAILED, MigrationPhase.CANCELLED})


class PolicyError(ValueError):
    """The VMOP's force contradicts the VM's liveMigrationPolicy (the message says how to fix it)."""


def auto_converge(policy: str | None, force: bool | None) -> bool:
    """DVP's meaning: AlwaysSafe never throttles (force=true is refused), PreferSafe throttles only
    when the operation says force=true, AlwaysForced always throttles (force=false is refused),
    PreferForced throttles unless the operation says force=false."""
    p = LiveMigrationPolicy(policy or LiveMigrationPolicy.PREFER_SAFE)
    if p is LiveMigrationPolicy.ALWAYS_SAFE:
        if force:
            raise PolicyError("spec.force: the machine's liveMigrationPolicy AlwaysSafe forbids a forced (CPU "
                              "throttling) migration; remove force or set liveMigrationPolicy PreferSafe")
        return False
    if p is LiveMigrationPolicy.ALWAYS_FORCED:
        if force is False:
            raise PolicyError("spec.force: the machine's liveMigrationPolicy AlwaysForced always throttles the CPU; "
                              "remove force: false or set liveMigrationPolicy PreferForced")
        return True
    if p is LiveMigrationPolicy.PREFER_SAFE:
        return bool(force)
    return force is not False


@dataclass(frozen=True)
class MigrationRequest:
    id: str
    target_node: str
    target_address: str
    auto_converge: bool = False
    timeout_seconds: int = 0
    """0: proportional to memory plus disk (decided by the source node handler)."""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "targetNode": self.target_node, "targetAddress": self.target_address,
                               "autoConverge": self.auto_converge}
        if self.timeout_seconds:
            out["timeoutSeconds"] = self.timeout_seconds
        return out

    @staticmethod
    def parse(spec: dict[str, Any]) -> MigrationRequest | None:
        raw = spec.get("migration")
        if not raw or not raw.get("id") or not raw.get("targetNode"):
            return None
        return MigrationRequest(id=str(raw["id"]), target_node=str(raw["targetNode"]),
                                target_address=str(raw.get("targetAddress") or ""),
                                auto_converge=bool(raw.get("autoConverge")),
                                timeout_seconds=int(raw.get("timeoutSeconds") or 0))


def status_of(obj: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
    """The instance's `status.migration` (of `request_id` when given; else empty)."""
    st: dict[str, Any] = dict(((obj.get("status") or {}).get("migration")) or {})
    if request_id is not None and st.get("id") != request_id:
        return {}
    return st


def in_flight(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(source, target) of the instance's requested migration that has not ended yet."""
    req = MigrationRequest.parse(obj.get("spec") or {})
    if req is None:
        return None
    st = status_of(obj, req.id)
    if st.get("phase") in TERMINAL:
        return None
    return str(st.get("sourceNode") or (obj.get("spec") or {}).get("nodeName") or ""), req.target_node


def queue_reason(flights: Iterable[tuple[str, str]], source: str, target: str, *, cluster_cap: int) -> str | None:
    """Why a migration from `source` to `target` must wait (None: it may start now)."""
    flights = list(flights)
    if any(s == source for s, _ in flights):
        return f"node {source} already has an outgoing migration (one at a time per node)"
    if any(t == target for _, t in flights):
        return f"node {target} already has an incoming migration (one at a time per node)"
    if len(flights) >= cluster_cap:
        return f"{len(flights)} migrations are in progress, the cluster's limit is {cluster_cap}"
    return None
