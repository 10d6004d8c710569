"""libvirtd + virtlogd for tests, shared safely between overlapping test runs.

There is one privileged libvirtd per machine (its socket, state and `qemu.conf` paths are
fixed), so test runs share it instead of each starting their own:

- every run holds a *shared* flock on `users.lock` for as long as it uses libvirt; the kernel
  drops it if the run dies, so there are no stale leases;
- start and stop decisions are taken under an exclusive flock on `ctl.lock`;
- a run starts virtlogd/libvirtd only if none is running, and records what it started (PID
  and start time) in `owned.json`;
- on release, whoever can take `users.lock` exclusively is the last user and stops the
  daemons recorded in `owned.json` — by PID, never by name. Daemons this module did not start
  (e.g. a system libvirtd) are used but never stopped.

Test domains are named `dvpt-<pid of the owning pytest>-<name>`; domains whose owner is gone
(a run killed with -9) are destroyed when the next run acquires or releases libvirt.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import libvirt

from tests.services.processes import (
    RUN_DIR,
    ProcessId,
    command_name,
    locked,
    read_json,
    read_pidfile,
    stop_process,
    write_json,
)

URI = "qemu:///system"
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
# qemu.conf settings that let QEMU run as root without a security driver or cgroups (no
# systemd, no AppArmor/SELinux in the test machine's containers)
QEMU_SETTINGS = {
    "user": '"root"',
    "group": '"root"',
    "security_driver": '"none"',
    "cgroup_controllers": "[ ]",
}
_BEGIN = "# --- begin dvp test settings (tests/services/libvirtd.py) ---"
_END = "# --- end dvp test settings ---"
DAEMON_PIDFILES = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}
DAEMON_SOCKETS = {"virtlogd": Path("/run/libvirt/virtlogd-sock"), "libvirtd": Path("/run/libvirt/libvirt-sock")}
DOMAIN_PREFIX = "dvpt-"
_OWNED_DOMAIN = re.compile(r"^dvpt-(\d+)-")


class LibvirtSetupError(RuntimeError):
    """libvirtd could not be prepared or started for the tests."""


def domain_name_for(name: str) -> str:
    """The libvirt name for a test domain owned by this pytest process."""
    return f"{DOMAIN_PREFIX}{os.getpid()}-{name}"


def qemu_conf_text(current: str) -> str:
    """`current` with our settings in a managed block, and any other active setting of those keys
    commented out (libvirt rejects nothing, but the last of duplicate keys is not guaranteed)."""
    lines = []
    inside = False
    for line in current.splitlines():
        if line.strip() == _BEGIN:
            inside = True
            continue
        if line.strip() == _END:
            inside = False
            continue
        if inside:
            continue
        key = line.split("=", 1)[0].strip()
        lines.append(f"#{line}  # disabled by dvp tests" if "=" in line and key in QEMU_SETTINGS else line)
    block = [_BEGIN, *(f"{k} = {v}" for k, v in QEMU_SETTINGS.items()), _END]
    return "\n".join([*lines, *block]) + "\n"


def prepare_host() -> None:
    """The user, directories and qemu.conf libvirtd needs here (idempotent; call under ctl.lock)."""
    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        group = ["--gid", "kvm"] if _group_exists("kvm") else ["--user-group"]
        subprocess.run(
            ["useradd", "--system", *group, "--no-create-home", "--home-dir", "/var/lib/libvirt",
             "--shell", "/usr/sbin/nologin", "libvirt-qemu"],
            check=True, capture_output=True,
        )  # fmt: skip
    for d in ("/var/log/libvirt/qemu", "/run/libvirt", "/var/lib/libvirt/qemu", "/var/cache/libvirt"):
        Path(d).mkdir(parents=True, exist_ok=True)
    current = QEMU_CONF.read_text() if QEMU_CONF.exists() else ""
    wanted = qemu_conf_text(current)
    if wanted != current:
        QEMU_CONF.parent.mkdir(parents=True, exist_ok=True)
        tmp = QEMU_CONF.with_name("qemu.conf.dvp-tmp")
        tmp.write_text(wanted)
        tmp.replace(QEMU_CONF)


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _running(daemon: str) -> ProcessId | None:
    pid = read_pidfile(DAEMON_PIDFILES[daemon])
    if pid is None or command_name(pid) != daemon:
        return None
    return ProcessId.of(pid)


def _answering(daemon: str) -> bool:
    """A daemon started by someone else (another PID file, another PID namespace) still owns
    the sockets: starting a second one would fail on libvirt's driver locks."""
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.connect(str(DAEMON_SOCKETS[daemon]))
        return True
    except OSError:
        return False
    finally:
        sock.close()


@dataclass(frozen=True)
class LibvirtService:
    """What a test run gets: where libvirt is, and whether this run started it."""

    uri: str
    started_here: bool
    log_file: Path

    def connect(self) -> libvirt.virConnect:
        return libvirt.open(self.uri)


class LibvirtDaemons:
    """Acquire/release the shared libvirtd for one test run (see the module docstring)."""

    def __init__(self, *, state_dir: Path = RUN_DIR / "libvirt", start_timeout: float = 30.0) -> None:
        self.state_dir = state_dir
        self.start_timeout = start_timeout
        self._users: IO[str] | None = None

    @property
    def _owned_file(self) -> Path:
        return self.state_dir / "owned.json"

    def acquire(self) -> LibvirtService:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.state_dir / "libvirtd.log"
        with locked(self.state_dir / "ctl.lock"):
            users = (self.state_dir / "users.lock").open("a")
            fcntl.flock(users, fcntl.LOCK_SH)
            self._users = users
            prepare_host()
            owned = read_json(self._owned_file)
            started = False
            for daemon in ("virtlogd", "libvirtd"):
                if _running(daemon) is None and not _answering(daemon):
                    owned[daemon] = self._start(daemon, log_file).to_json()
                    write_json(self._owned_file, owned)
                    started = True
            conn = self._wait_for_socket(log_file)
            try:
                reap_orphan_domains(conn)
            finally:
                conn.close()
        return LibvirtService(uri=URI, started_here=started, log_file=log_file)

    def release(self) -> None:
        if self._users is None:
            return
        with locked(self.state_dir / "ctl.lock"):
            self._users.close()  # drops our shared lock
            self._users = None
            with (self.state_dir / "users.lock").open("a") as users:
                try:
                    fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another run still uses libvirt: leave it running
                self._stop_owned()

    def _stop_owned(self) -> None:
        owned = read_json(self._owned_file)
        if "libvirtd" in owned:
            try:
                conn = libvirt.open(URI)
            except libvirt.libvirtError:
                conn = None
            if conn is not None:
                reap_orphan_domains(conn)
                conn.close()
        for daemon in ("libvirtd", "virtlogd"):
            record = owned.pop(daemon, None)
            if isinstance(record, dict):
                stop_process(ProcessId.from_json(record))
            write_json(self._owned_file, owned)

    def _start(self, daemon: str, log_file: Path) -> ProcessId:
        env = {**os.environ, "LIBVIRT_LOG_OUTPUTS": f"3:file:{log_file}"}
        # -d: the daemon forks into the background and its parent exits once it initialised
        done = subprocess.run([daemon, "-d"], env=env, capture_output=True, text=True, check=False)
        pid = read_pidfile(DAEMON_PIDFILES[daemon])
        proc = ProcessId.of(pid) if pid is not None else None
        if done.returncode != 0 or proc is None:
            raise LibvirtSetupError(
                f"starting {daemon} failed (exit {done.returncode}): {done.stderr.strip()}; see {log_file}"
            )
        return proc

    def _wait_for_socket(self, log_file: Path) -> libvirt.virConnect:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                return libvirt.open(URI)
            except libvirt.libvirtError as exc:
                if time.monotonic() > deadline:
                    raise LibvirtSetupError(
                        f"libvirtd did not answer on {URI} within {self.start_timeout:.0f}s: {exc}; "
                        f"see {log_file}"
                    ) from exc
                time.sleep(0.1)


def reap_orphan_domains(conn: libvirt.virConnect) -> list[str]:
    """Destroy (and undefine) test domains whose owning pytest process is gone."""
    reaped = []
    for dom in conn.listAllDomains():
        m = _OWNED_DOMAIN.match(dom.name())
        if not m or ProcessId.of(int(m.group(1))) is not None:
            continue
        try:
            persistent = dom.isPersistent()
            if dom.isActive():
                dom.destroy()  # a transient domain is gone after this
            if persistent:
                dom.undefine()
        except libvirt.libvirtError:
            continue  # vanished meanwhile
        reaped.append(dom.name())
    return reaped
