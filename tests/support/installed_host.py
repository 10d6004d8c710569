"""Install targets for the install/upgrade tests: a lab host (tests/support/hostlab.py) whose
file system is this machine's, so an install really writes /usr/local/bin/dvp, /etc/dvp,
/var/lib/dvp, ... here (installer/hostlayout.py).

`layout_session()` makes that safe: it holds an exclusive flock so overlapping test runs
(this branch's and the upgrade tests) take turns on the layout, removes what an earlier
killed run left behind, and cleans up again at the end. Services started by an install run
inside the lab host's PID namespace and die with it; the caller closes the lab *before*
leaving the session so nothing keeps running.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from installer import hostlayout
from tests.services.processes import RUN_DIR, locked

LAYOUT_LOCK = RUN_DIR / "hostlayout.lock"
INSTALLED_PATHS = (
    hostlayout.BINARY,
    hostlayout.BINARY_PREVIOUS,
    hostlayout.CONFIG_DIR,
    hostlayout.STATE_DIR,
    hostlayout.RUN_DIR,
    hostlayout.LOG_DIR,
    hostlayout.service_paths("dvp-server").init_script,
    hostlayout.service_paths("dvp-agent").init_script,
    "/etc/modules-load.d/dvp.conf",
    "/etc/sysctl.d/90-dvp.conf",
    "/var/cache/dvp",  # where the single binary unpacks itself when run as root
)


def remove_installed() -> None:
    for name in INSTALLED_PATHS:
        path = Path(name)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def layout_session() -> Iterator[None]:
    """Exclusive use of the on-host layout paths, clean before and after."""
    with locked(LAYOUT_LOCK):
        remove_installed()
        try:
            yield
        finally:
            remove_installed()
