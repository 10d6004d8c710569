"""One builder for status conditions: it always stamps `observedGeneration`, keeps
`lastTransitionTime` while the status stays the same, and starts conditions as Unknown."""

from __future__ import annotations

import datetime as dt
from typing import Any


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def is_true(status: dict[str, Any], type_: str) -> bool:
    cond = get(status, type_)
    return bool(cond and cond.get("status") == "True")


def set_condition(status: dict[str, Any], type_: str, cond_status: str | bool, reason: str, message: str = "",
                  *, generation: int | None = None) -> None:
    """Set (or replace) one condition in `status["conditions"]`."""
    if isinstance(cond_status, bool):
        cond_status = "True" if cond_status else "False"
    conds: list[dict[str, Any]] = status.setdefault("conditions", [])
    old = get(status, type_)
    new: dict[str, Any] = {"type": type_, "status": cond_status, "reason": reason, "message": message}
    if generation is not None:
        new["observedGeneration"] = generation
    new["lastTransitionTime"] = old["lastTransitionTime"] if old and old.get("status") == cond_status and \
        old.get("lastTransitionTime") else now()
    if old is None:
        conds.append(new)
    else:
        conds[conds.index(old)] = new


def init_unknown(status: dict[str, Any], types: list[str], *, generation: int | None = None) -> None:
    """Conditions a kind reports start as Unknown until a handler knows better."""
    for t in types:
        if get(status, t) is None:
            set_condition(status, t, "Unknown", "Unknown", "", generation=generation)


def remove(status: dict[str, Any], type_: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != type_]
