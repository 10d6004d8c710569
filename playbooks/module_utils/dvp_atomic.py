"""Module utility `dvp_atomic`: the one way the playbooks' own modules (library/) replace a file.

A host's configuration must never be seen half written, nor lost by a crash right after the
module said it changed it: the new content goes to a temporary file in the same directory, is
given its mode and owner, flushed to disk, and renamed over the old file; on any failure the
temporary file is removed and the old file is left as it was. Ansible ships this directory to
the host with each module that imports it (a `module_utils` directory next to the playbooks).
"""

from __future__ import annotations

import os
import tempfile


def write_atomic(path: str, data: bytes, mode: int, uid: int, gid: int) -> None:
    """Replace `path` with `data` (mode and owner set before it becomes visible)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".dvp-")
    try:
        os.fchmod(fd, mode)
        os.fchown(fd, uid, gid)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
