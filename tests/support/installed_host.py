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

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from installer import hostlayout
from tests.services.libvirtd import LibvirtDaemons
from tests.services.processes import RUN_DIR, locked
from tests.support.dist import built_dvp
from tests.support.hostlab import HostLab, LabHost

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


@dataclass
class InstallTarget:
    """The built binary, a lab host for it and an install config naming that host; the install
    and uninstall tests add their own ways of running the binary."""

    dvp: Path
    host: LabHost
    config: Path
    state: Path
    env: dict[str, str]


T = TypeVar("T", bound=InstallTarget)

CONFIG = """apiVersion: dvp.deckhouse.io/v1alpha1
kind: InstallConfig
ssh:
  user: root
  privateKeyFiles: [{key}]
  useAgent: false
  knownHostsFile: {known}
hosts:
  - address: {address}
    role: master
virtualization:
  virtualMachineCIDRs: [{cidr}]
checks:
  profile: evaluation
"""


@contextmanager
def install_target(kind: type[T], work: Path, *, host_name: str, cidr: str) -> Iterator[T]:
    """A `kind` on a fresh lab host named `host_name` (virtual machines in `cidr`), inside
    `layout_session()` with the libvirt daemons held; the lab is closed before the session ends."""
    dvp = built_dvp()
    daemons = LibvirtDaemons()
    daemons.acquire()
    lab = HostLab()
    try:
        with layout_session():
            host = lab.add_host(host_name)
            known = work / "known_hosts"
            known.write_text(lab.known_hosts())
            config = work / "install.yaml"
            config.write_text(CONFIG.format(key=lab.client_key, known=known, address=host.address, cidr=cidr))
            env = {**os.environ, "DVP_CACHE_DIR": str(work / "dvp-cache")}
            yield kind(dvp=dvp, host=host, config=config, state=work / "state", env=env)
            lab.close()  # stops the services the install started (they live in the host's PID namespace)
    finally:
        lab.close()
        daemons.release()
