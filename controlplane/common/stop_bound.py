"""A process told to stop is gone within its grace period, and says what held it up if not.

`arm(seconds)` is called once a stop was asked for (SIGTERM). Should the stop take longer, every
thread's stack is written to stderr and the process exits with status 1: what the supervisor's
SIGKILL (systemd, the kubelet) would do a moment later, but with the reason in the log.
"""

from __future__ import annotations

import faulthandler
import sys

EXIT_STATUS = 1
"""faulthandler's `exit=True` ends the process with this status."""


def arm(seconds: float) -> None:
    """Dump every thread's stack and exit if this process still runs `seconds` from now."""
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.stderr)
