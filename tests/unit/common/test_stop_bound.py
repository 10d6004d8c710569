"""A stop held up past its bound: the process exits with every thread's stack in its log."""

from __future__ import annotations

import subprocess
import sys
import time

from controlplane.common import stop_bound
from tests.services.apiserver import REPO

HELD_UP = """
import threading, time
from controlplane.common import stop_bound
def held_up_stop():
    threading.Event().wait()
stop_bound.arm(0.5)
held_up_stop()
"""


def test_a_stop_past_its_bound_exits_and_names_what_held_it_up() -> None:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", HELD_UP], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert done.returncode == stop_bound.EXIT_STATUS
    assert time.monotonic() - start < 15
    assert "held_up_stop" in done.stderr, done.stderr


def test_a_stop_within_its_bound_exits_as_it_would() -> None:
    done = subprocess.run([sys.executable, "-c", "from controlplane.common import stop_bound\n"
                           "stop_bound.arm(30)\nprint('stopped')"], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert done.returncode == 0
    assert done.stdout == "stopped\n"
