"""Durability of renames: a file written beside its target and renamed into place survives a crash
only once the directory holding the new name is on disk too. The datastore's backups, DVCR's blobs
and the node's volume chains all finish that way, with this one helper."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Flush directory `path` (its entries: names created, renamed or removed in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
