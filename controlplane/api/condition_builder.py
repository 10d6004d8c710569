"""The one builder of status conditions, shared by the controllers and the node handler.

Every writer of a `status.conditions` list goes through here, so all of them behave alike:
a condition names its type and reason with the enums of :mod:`controlplane.api.conditions`
or :mod:`controlplane.api.internal`, starts as ``Unknown`` until someone knows better
(`init_unknown`), keeps its ``lastTransitionTime`` while its status stays the same, and
carries the ``observedGeneration`` it describes when the writer gives one. Messages say what
to do ("Specify an existing VirtualMachineClass in spec.virtualMachineClassName"), not only
what went wrong.

`apply` works on a list and returns a new one (the node handler builds status documents);
`set_condition` edits a status dict in place (the controllers' `State.status`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Final

UNKNOWN: Final = "Unknown"

Conditions = list[dict[str, Any]]


def timestamp() -> str:
    """The API's timestamp format, in UTC, to the second."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_value(value: bool | str | None) -> str:
    """``True``/``False``/``Unknown`` from a bool (None: Unknown) or a status string."""
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "True" if value else "False"
    return value


def get_in(conditions: Conditions, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def apply(conditions: Conditions, type_: str, status: bool | str | None, reason: str, message: str = "", *,
          now: str | None = None, generation: int | None = None, heartbeat: bool = False) -> Conditions:
    """`conditions` with `type_` set (a new list; the others kept in their order)."""
    stamp = now or timestamp()
    value = status_value(status)
    old = get_in(conditions, type_)
    cond: dict[str, Any] = {"type": str(type_), "status": value, "reason": str(reason), "message": message,
                            "lastTransitionTime": old["lastTransitionTime"]
                            if old and old.get("status") == value and old.get("lastTransitionTime") else stamp}
    if generation is not None:
        cond["observedGeneration"] = generation
    if heartbeat:
        cond["lastHeartbeatTime"] = stamp
    if old is None:
        return [*conditions, cond]
    index = conditions.index(old)
    return [*conditions[:index], cond, *conditions[index + 1:]]


# -- on a status dict (controllers) ---------------------------------------------------------------

def get(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return get_in(status.get("conditions") or [], type_)


def is_true(status: dict[str, Any], type_: str) -> bool:
    cond = get(status, type_)
    return bool(cond and cond.get("status") == "True")


def set_condition(status: dict[str, Any], type_: str, cond_status: bool | str | None, reason: str,
                  message: str = "", *, generation: int | None = None) -> None:
    """Set (or replace) one condition in `status["conditions"]`."""
    status["conditions"] = apply(list(status.get("conditions") or []), type_, cond_status, reason, message,
                                 generation=generation)


def init_unknown(status: dict[str, Any], types: list[str], *, generation: int | None = None) -> None:
    """Conditions a kind reports start as Unknown until a handler knows better."""
    for t in types:
        if get(status, t) is None:
            set_condition(status, t, UNKNOWN, UNKNOWN, "", generation=generation)


def remove(status: dict[str, Any], type_: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != type_]


class FailureReason(StrEnum):
    """Reasons of a condition whose handler failed before it could decide (status Unknown)."""

    RECONCILE_FAILED = "ReconcileFailed"
    """The handler raised; the message says what failed and what to do."""
    API_UNAVAILABLE = "APIServerUnavailable"
    """The API server was busy, failing or unreachable; the controller retries on its own."""


def clear_failures(status: dict[str, Any]) -> None:
    """Take back the previous cycle's failure reports (conditions with a `FailureReason`): each
    goes back to Unknown, so a report lasts exactly as long as its failure — the cycle that
    fails again writes it again, one that succeeds lets its handler say what is true now."""
    failed = {r.value for r in FailureReason}
    for cond in list(status.get("conditions") or []):
        if cond.get("reason") in failed:
            set_condition(status, cond["type"], UNKNOWN, UNKNOWN, "", generation=cond.get("observedGeneration"))
