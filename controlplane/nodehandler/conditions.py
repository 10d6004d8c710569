"""One condition builder for everything the node handler reports (instances, volumes, Node):
a condition keeps its `lastTransitionTime` while its status stays the same, and instance and
volume conditions carry the generation they describe."""

from __future__ import annotations

from typing import Any


def set_condition(conditions: list[dict[str, Any]], type_: str, status: bool | None, reason: str, message: str, *,
                  now: str, generation: int | None = None, heartbeat: bool = False) -> list[dict[str, Any]]:
    """`conditions` with `type_` set (a new list; the others kept in order)."""
    value = "Unknown" if status is None else "True" if status else "False"
    old = next((c for c in conditions if c.get("type") == type_), None)
    cond: dict[str, Any] = {"type": type_, "status": value, "reason": reason, "message": message,
                            "lastTransitionTime": old["lastTransitionTime"]
                            if old and old.get("status") == value and old.get("lastTransitionTime") else now}
    if generation is not None:
        cond["observedGeneration"] = generation
    if heartbeat:
        cond["lastHeartbeatTime"] = now
    out = [c for c in conditions if c.get("type") != type_]
    if old is None:
        return [*out, cond]
    index = conditions.index(old)
    return [*conditions[:index], cond, *conditions[index + 1:]]


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
