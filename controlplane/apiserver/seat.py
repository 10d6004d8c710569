"""The seat the current request holds in the API server's priority-and-fairness gate
(`flowcontrol`), kept here without dependencies so that the datastore and the body codecs can
give it back where a request leaves the CPU, without importing the HTTP layer."""

from __future__ import annotations

import contextvars
from typing import Protocol


class Seat(Protocol):
    def release(self) -> None: ...


CURRENT: contextvars.ContextVar[Seat | None] = contextvars.ContextVar("dvp_flowcontrol_seat", default=None)


def release() -> None:
    """The current request waits off the CPU (its datastore commit, a worker thread): its seat
    goes to the next request in turn, and it runs on without one."""
    seat = CURRENT.get()
    if seat is not None:
        seat.release()
