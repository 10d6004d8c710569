"""Rebuild a recorded host-file case (tests/fixtures/hosts/<case>/) into a directory that a
test host uses as its DVP_HOST_ROOT: copy `files/`, then create the directories and device
nodes listed in `manifest.txt` (device nodes need root)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

CASES = Path(__file__).resolve().parent.parent / "fixtures" / "hosts"


def materialize(case: str, dest: Path) -> Path:
    src = CASES / case
    if not src.is_dir():
        raise FileNotFoundError(f"no recorded host case {case} under {CASES}")
    dest.mkdir(parents=True, exist_ok=True)
    if (src / "files").is_dir():
        shutil.copytree(src / "files", dest, dirs_exist_ok=True)
    for line in (src / "manifest.txt").read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        target = dest / parts[1].lstrip("/")
        if parts[0] == "dir":
            target.mkdir(parents=True, exist_ok=True)
        elif parts[0] == "char":
            major, minor, mode = int(parts[2]), int(parts[3]), int(parts[4], 8)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.unlink()
            os.mknod(target, stat.S_IFCHR | mode, os.makedev(major, minor))
        else:
            raise ValueError(f"{src / 'manifest.txt'}: unknown entry {line!r}")
    return dest
