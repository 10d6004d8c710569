"""What bench/migrate makes of one migration leg's measurements, apart from the lab that takes them
(so it is unit-tested): the longest gap between ping answers, and where that gap goes.

A leg has the answer times of the probes on the source host and on the target host, the leg's
start and end, libvirt's own downtime figure, and the times the source paused the guest and the
target resumed it (libvirt lifecycle events, SUSPENDED/RESUMED with detail MIGRATED, read from each
host's libvirtd by the bench itself for both legs alike). The gap then splits into:
- `before`: the source's last answer to the pause (at most one probe interval, plus the answer's
  way back);
- `paused`: pause to resume as the events tell it (libvirt's downtime plus the events' delivery);
- `after`: the resume to the target's first answer — everything that runs between the guest
  resuming on the target and it answering: the guest's own announce (ARP), the target host's
  neighbour resolution, the probe interval, and whatever the migrating side still does then.

Medians are taken per side and per direction (host 1 -> 2, host 2 -> 1), since the bench moves
each side both ways.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median


def longest_gap(replies: list[float], start: float, end: float) -> float:
    """Longest gap between answers within [start, end] (the first answer before and after count)."""
    replies = sorted(replies)
    before = [t for t in replies if t < start]
    inside = [t for t in replies if start <= t <= end]
    after = [t for t in replies if t > end]
    points = before[-1:] + inside + after[:1]
    if len(points) < 2:
        return math.nan
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def nan_median(values: Iterable[float | None]) -> float:
    """Median of the known values (None and NaN tell nothing: a leg without answers or events)."""
    known = [v for v in values if v is not None and not math.isnan(v)]
    return median(known) if known else math.nan


@dataclass
class Leg:
    side: str
    """"ours" or "peer"."""
    direction: str
    """"1->2" or "2->1"."""
    total: float
    down: float
    """Longest gap between answers from either host during the move."""
    libvirt: float | None
    """libvirt's own downtime figure (the completed job's statistics on the target)."""
    answers: int
    before: float = math.nan
    paused: float = math.nan
    after: float = math.nan
    phases: dict[str, float] = field(default_factory=dict)
    """ours: seconds from the start to the first report of each phase."""


def split(source: list[float], target: list[float], paused_at: float | None,
          resumed_at: float | None) -> tuple[float, float, float]:
    """(before, paused, after) of a leg, NaN where an event or an answer is missing."""
    before = after = paused = math.nan
    if paused_at is not None:
        last = [t for t in source if t <= paused_at]
        if last:
            before = paused_at - max(last)
    if resumed_at is not None:
        first = [t for t in target if t >= resumed_at]
        if first:
            after = min(first) - resumed_at
    if paused_at is not None and resumed_at is not None:
        paused = resumed_at - paused_at
    return before, paused, after


@dataclass(frozen=True)
class Summary:
    legs: int
    total: float
    down: float
    libvirt: float
    after: float


def summarize(legs: list[Leg], side: str, direction: str | None = None) -> Summary:
    """Medians of one side's legs, of one direction or of both."""
    mine = [x for x in legs if x.side == side and (direction is None or x.direction == direction)]
    return Summary(legs=len(mine), total=nan_median(x.total for x in mine), down=nan_median(x.down for x in mine),
                   libvirt=nan_median(x.libvirt for x in mine), after=nan_median(x.after for x in mine))


def migration_events(lines: Iterable[str], name: str) -> dict[str, float]:
    """From `virsh event --event lifecycle --loop --timestamp` output: when a domain whose name
    holds `name` was first suspended and first resumed by a migration ("suspended", "resumed")."""
    seen: dict[str, float] = {}
    for line in lines:  # 2026-12-03 11:50:01.123+0000: event 'lifecycle' for domain 'x': Resumed Migrated
        stamp, _, rest = line.partition(": event ")
        if name not in rest:
            continue
        for what in ("Suspended Migrated", "Resumed Migrated"):
            if rest.endswith(what):
                when = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
                seen.setdefault(what.split()[0].lower(), when)
    return seen
