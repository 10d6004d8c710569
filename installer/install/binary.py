"""Where the running `dvp` comes from, and where its bundled data lives.

From the source tree `dvp` is the Python package; in the single binary (`dist/dvp`, see
`build.spec`) it is a launcher that unpacks the bundle once into a cache directory keyed by
the binary's hash and execs the program from there, exporting `DVP_EXECUTABLE` (the launcher
itself: the file the install copies to hosts). The install engine asks this module for the
playbooks directory, the binary to install, and the command that runs `ansible-playbook`.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def bundle_dir() -> Path:
    """The directory holding bundled data (playbooks/) — the unpacked bundle or the repo."""
    if frozen():
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return REPO_ROOT


def playbooks_dir() -> Path:
    return bundle_dir() / "playbooks"


def dvp_command() -> list[str]:
    """argv that runs this very `dvp` (fast path: the unpacked program, not the launcher)."""
    if frozen():
        return [sys.executable]
    return [sys.executable, "-m", "installer.cli.main"]


def installable_binary(workdir: Path) -> Path:
    """The file to copy to hosts as /usr/local/bin/dvp.

    Frozen: the launcher file (`DVP_EXECUTABLE`). From the source tree there is no single file;
    `DVP_INSTALL_BINARY` may name one (e.g. a built dist/dvp), otherwise a small script that
    runs this checkout's Python is written to `workdir` — usable only on hosts that share
    this machine's file system (localhost, the test lab), which is what development needs.
    """
    if frozen():
        return Path(os.environ.get("DVP_EXECUTABLE") or sys.executable)
    explicit = os.environ.get("DVP_INSTALL_BINARY")
    if explicit:
        return Path(explicit)
    script = workdir / "dvp-dev"
    text = (
        "#!/bin/sh\n"
        "# dvp from a source checkout (development installs only)\n"
        f"PYTHONPATH={REPO_ROOT} exec {sys.executable} -m installer.cli.main \"$@\"\n"
    )
    if not script.exists() or script.read_text() != text:
        script.write_text(text)
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def ansible_playbook_wrapper(workdir: Path) -> Path:
    """An executable that behaves as `ansible-playbook`: `dvp ansible-playbook "$@"`."""
    import shlex

    path = workdir / "ansible-playbook"
    argv = " ".join(shlex.quote(a) for a in dvp_command())
    text = f"#!/bin/sh\nexec {argv} ansible-playbook \"$@\"\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        path.chmod(0o755)
    return path
