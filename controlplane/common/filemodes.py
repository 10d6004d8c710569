"""File modes of the data directory: private, checked at every start.

The data directory holds the datastore (Secrets included) with its WAL, private keys, tokens,
kubeconfigs with credentials and DVCR's images. Each of them is created private (files 0600,
directories 0700) and `secure_tree` checks the whole tree when a server starts: whatever an
older version, a restore or a hand-made copy left readable by other users is narrowed, with a
warning naming the path, the mode found and the mode set, so a wrong mode never depends on the
data directory's own mode alone.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PUBLIC_SUFFIXES = (".crt",)
"""Files that may stay readable: certificates (no secret in them)."""
PUBLIC_NAMES = ("dvcr.json",)
"""DVCR's connection file: where it listens and which CA; no credentials."""
SHOWN = 5


@dataclass(frozen=True)
class Fix:
    path: Path
    found: int
    wanted: int


def make_private_dirs(path: Path) -> None:
    """`mkdir -p` whose new directories are 0700 (Path.mkdir gives parents the umask's mode)."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # whatever the umask


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (e.g. a datastore before SQLite opens it)."""
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _is_public(path: Path) -> bool:
    return path.suffix in PUBLIC_SUFFIXES or path.name in PUBLIC_NAMES


def check_tree(root: Path) -> list[Fix]:
    """What in `root` is open to other users (directories not 0700, files not private)."""
    fixes: list[Fix] = []
    if not root.exists():
        return fixes
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        mode = stat.S_IMODE(os.lstat(here).st_mode)
        if mode != 0o700:
            fixes.append(Fix(here, mode, 0o700))
        for name in filenames:
            path = here / name
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or _is_public(path):
                continue
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                fixes.append(Fix(path, mode, mode & 0o700 or 0o600))
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    return fixes


def secure_tree(root: Path, *, what: str = "data directory") -> list[Fix]:
    """Narrow every mode `check_tree` finds, warning with the path, the mode found and the fix."""
    fixes = check_tree(root)
    for fix in fixes:
        os.chmod(fix.path, fix.wanted)
    if fixes:
        shown = ", ".join(f"{f.path} was {f.found:04o}, now {f.wanted:04o}" for f in fixes[:SHOWN])
        more = f" (and {len(fixes) - SHOWN} more)" if len(fixes) > SHOWN else ""
        log.warning("%s %s: %d files or directories were open to other users and have been made private: %s%s. "
                    "They hold the datastore, keys, tokens and images; keep them private (chmod -R go-rwx %s)",
                    what, root, len(fixes), shown, more, root)
    return fixes
