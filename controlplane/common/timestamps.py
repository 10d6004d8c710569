"""Kubernetes timestamps (RFC 3339, `2026-12-07T11:00:00Z`, with or without fractions) read
as seconds since the epoch, for the loops that act on an object's age (Events expiring,
finished operations deleted)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def epoch_seconds(value: Any) -> float | None:
    """`value` as seconds since the epoch; None when it is not a timestamp (a missing field, a
    client's garbage). One without an offset is taken as UTC, as the API server writes them."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()
