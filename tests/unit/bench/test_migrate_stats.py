"""bench/migrate's arithmetic: the longest gap between ping answers, where it goes (before the
pause, paused, after the resume), and medians per side and direction."""

from __future__ import annotations

import math

import pytest

from bench.migrate_stats import Leg, longest_gap, migration_events, nan_median, split, summarize


@pytest.mark.parametrize(("replies", "expected"), [
    pytest.param([9.99, 10.0, 10.02, 10.3, 10.32, 10.5, 10.7, 10.9, 11.05, 13.0], 0.28, id="gap-inside"),
    pytest.param([9.9, 10.5, 11.5], 1.0, id="first-answer-after-end-counts"),
    pytest.param([9.5, 12.5], 3.0, id="no-answer-inside"),
    pytest.param([12.5], math.nan, id="one-answer-tells-nothing"),
])
def test_longest_gap(replies: list[float], expected: float) -> None:
    got = longest_gap(list(reversed(replies)), 10.0, 11.0)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_split_names_each_part_of_the_gap() -> None:
    before, paused, after = split([1.0, 1.02, 1.04], [1.10, 1.25, 1.27], paused_at=1.05, resumed_at=1.15)
    assert (before, paused, after) == pytest.approx((0.01, 0.10, 0.10))


def test_split_without_events_or_answers_is_nan() -> None:
    before, paused, after = split([], [1.2], paused_at=None, resumed_at=1.3)
    assert math.isnan(before) and math.isnan(paused) and math.isnan(after)


def _leg(side: str, direction: str, down: float, libvirt: float | None = None) -> Leg:
    return Leg(side=side, direction=direction, total=1.0, down=down, libvirt=libvirt, answers=10, after=down / 2)


def test_summaries_per_side_and_direction_skip_unknowns() -> None:
    legs = [_leg("ours", "1->2", 0.2, 0.1), _leg("ours", "2->1", 0.1), _leg("ours", "2->1", math.nan),
            _leg("peer", "1->2", 0.5, 0.3)]
    assert summarize(legs, "ours").down == pytest.approx(0.15)
    assert summarize(legs, "ours").libvirt == pytest.approx(0.1)
    back = summarize(legs, "ours", "2->1")
    assert (back.legs, back.down, back.after) == (2, pytest.approx(0.1), pytest.approx(0.05))
    assert summarize(legs, "peer", "2->1").legs == 0 and math.isnan(summarize(legs, "peer", "2->1").down)
    assert math.isnan(nan_median([None, math.nan]))


def test_migration_events_from_virsh_event_lines() -> None:
    lines = ["2026-12-03 11:50:01.100+0000: event 'lifecycle' for domain 'dvp-other_vm': Suspended Migrated",
             "2026-12-03 11:50:01.200+0000: event 'lifecycle' for domain 'dvp-ns_mover': Suspended Paused",
             "2026-12-03 11:50:01.250+0000: event 'lifecycle' for domain 'dvp-ns_mover': Suspended Migrated",
             "2026-12-03 11:50:01.400+0000: event 'lifecycle' for domain 'dvp-ns_mover': Resumed Migrated",
             "2026-12-03 11:50:09.000+0000: event 'lifecycle' for domain 'dvp-ns_mover': Resumed Migrated",
             "events: done"]
    seen = migration_events(lines, "ns_mover")
    assert seen["resumed"] - seen["suspended"] == pytest.approx(0.15)
    assert seen["suspended"] == pytest.approx(1796298601.25)
