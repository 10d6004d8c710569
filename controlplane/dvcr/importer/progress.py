"""Progress of a long transfer: bytes done and total, average and current speed.

The importer, the uploader and `pull_disk` call a `ProgressCallback` at most every
`interval` seconds and once at the end; the image controller turns it into
`status.progress` and `status.downloadSpeed` (avg/current, and their byte counts).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    phase: str             # "downloading", "pushing", "done"
    done: int              # bytes processed so far (of the source, as fetched)
    total: int | None      # bytes expected, when the source says
    average_speed: float   # bytes/s since the start
    current_speed: float   # bytes/s over the last few seconds
    elapsed: float

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "done": self.done, "total": self.total,
                "percent": None if self.percent is None else round(self.percent, 1),
                "averageSpeed": int(self.average_speed), "currentSpeed": int(self.current_speed),
                "elapsedSeconds": round(self.elapsed, 3)}


ProgressCallback = Callable[[Progress], None]


class ProgressMeter:
    def __init__(self, callback: ProgressCallback | None, *, total: int | None = None, phase: str = "downloading",
                 interval: float = 0.5, window: float = 3.0) -> None:
        self.callback = callback
        self.total = total
        self.phase = phase
        self.interval = interval
        self.window = window
        self.done = 0
        self.started = time.monotonic()
        self._last_report = 0.0
        self._samples: deque[tuple[float, int]] = deque([(self.started, 0)])

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last_report >= self.interval:
            self._samples.append((now, self.done))
            while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
                self._samples.popleft()
            self._last_report = now
            self._emit(now)

    def snapshot(self, *, phase: str | None = None) -> Progress:
        now = time.monotonic()
        elapsed = max(now - self.started, 1e-9)
        t0, d0 = self._samples[0]
        current = (self.done - d0) / (now - t0) if now - t0 > 1e-3 else self.done / elapsed
        return Progress(phase or self.phase, self.done, self.total, self.done / elapsed, current, elapsed)

    def _emit(self, now: float) -> None:
        if self.callback is not None:
            self.callback(self.snapshot())

    def finish(self) -> Progress:
        final = self.snapshot(phase="done")
        if self.callback is not None:
            self.callback(final)
        return final
