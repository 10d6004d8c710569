"""The garbage-collector set-up of the long-running processes (controlplane/common/gc_tuning.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from controlplane.common import eventloop, gc_tuning


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class _Node:
    other: _Node | None = None


def test_tune_sets_the_thresholds_and_freezes_what_start_up_built(restored_gc: None) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    gc_tuning.tune(gc_tuning.GcSettings(young=12_345, middle=7, old=50))
    assert gc.get_threshold() == (12_345, 7, 50)
    assert gc.get_freeze_count() > 1000  # this test process's modules and objects


def test_tune_without_freezing_leaves_every_object_to_the_collector(restored_gc: None) -> None:
    gc.unfreeze()
    gc_tuning.tune(gc_tuning.GcSettings(freeze_startup=False))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (gc_tuning.DEFAULT.young, gc_tuning.DEFAULT.middle, gc_tuning.DEFAULT.old)


def test_a_cycle_made_after_tuning_is_still_collected(restored_gc: None) -> None:
    gc_tuning.tune()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert gone() is None


def test_every_long_running_process_tunes_before_its_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(gc_tuning, "tune", lambda settings=gc_tuning.DEFAULT: seen.append("tuned"))

    async def main() -> None:
        seen.append("running")

    eventloop.run_event_loop(main())
    assert seen == ["tuned", "running"]
