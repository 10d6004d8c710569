"""`run_all`: independent calls at the same time, results in order, errors after all finished."""

from __future__ import annotations

import threading
import time

import pytest

from controlplane.controllers.runtime.parallel import run_all


def test_calls_overlap_and_results_keep_their_order() -> None:
    barrier = threading.Barrier(3, timeout=5)  # passes only if all three run at once

    def call(i: int) -> int:
        barrier.wait()
        return i * 10

    assert run_all([lambda i=i: call(i) for i in range(3)]) == [0, 10, 20]


def test_an_error_is_raised_once_every_call_finished() -> None:
    done: list[str] = []

    def slow() -> str:
        time.sleep(0.2)
        done.append("slow")
        return "slow"

    def failing() -> str:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_all([failing, slow])
    assert done == ["slow"]


def test_one_call_runs_in_the_calling_thread() -> None:
    assert run_all([threading.current_thread]) == [threading.current_thread()]
    assert run_all([]) == []
