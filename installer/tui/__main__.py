"""`python -m installer.tui [CONFIG]`: the install wizard without the `dvp install` command
around it (the same `run_tui` that `dvp install` calls on a terminal)."""

from __future__ import annotations

import sys
from pathlib import Path

from installer.tui.app import default_options, run_tui


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print("usage: python -m installer.tui [CONFIG]\n\nThe dvp install wizard; CONFIG pre-fills it.")
        return 0
    config_path = Path(argv[0]) if argv else None
    return run_tui(config_path, default_options())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
