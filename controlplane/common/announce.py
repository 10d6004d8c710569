"""The one-line announcements processes print on stdout ("dvp agent: node N ready; consoles on
HOST:PORT"), which supervisors, scripts and the tests read.

`print` writes a line's text and its newline in two writes when stdout is unbuffered, and a log
line of another thread (stderr, often the same file) can land between them: a reader then saw
"...:39911" followed by a timestamp, and took the port for 14. Here the line and its newline go
out in one write(2), which a regular file or a pipe does not split.
"""

from __future__ import annotations

import io
import os
import sys


def announce(line: str) -> None:
    data = (line + "\n").encode("utf-8", "replace")
    sys.stdout.flush()  # whatever was printed before goes first
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, io.UnsupportedOperation, ValueError):  # a stand-in stdout (tests' capture)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return
    while data:
        data = data[os.write(fd, data):]
