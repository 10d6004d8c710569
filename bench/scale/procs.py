"""CPU-seconds and resident memory of a `dvp server` as a whole: the supervisor plus every
component process it runs (from DATA_DIR/components.json), read from /proc."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(pid: int) -> float:
    """utime + stime of `pid` and of its children it has waited for, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    # fields[0] is the state (field 3); utime is field 14, so index 11
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def tree_pids(root: int, data_dir: Path) -> list[int]:
    pids = [root]
    with contextlib.suppress(FileNotFoundError, ValueError):
        pids += [int(c["pid"]) for c in json.loads((data_dir / "components.json").read_text()) if c.get("pid")]
    return pids


def server_cpu(root: int, data_dir: Path) -> float:
    return sum(_stat_cpu(pid) for pid in tree_pids(root, data_dir))


def server_rss(root: int, data_dir: Path) -> int:
    return sum(_rss(pid) for pid in tree_pids(root, data_dir))
