"""One host as the upgrade works on it: an SSH (or local) connection from `installer.ssh`, root
through sudo when the login user is not root, and the few file operations the steps need —
upload with a checksum verified on the host, atomic writes, reads.

Every failure is a `RemoteError` naming the host and what was being done; command output in
messages is cut short and never contains the sudo password (the sudo layer keeps it out).
"""

from __future__ import annotations

import contextlib
import shlex
import time
from pathlib import Path

from installer.ssh.bastion import BastionPool
from installer.ssh.errors import SSHError
from installer.ssh.hostkeys import KnownHosts
from installer.ssh.process import CommandResult, Connection
from installer.ssh.sudo import run_as_root
from installer.ssh.target import SSHTarget


class RemoteError(Exception):
    def __init__(self, host: str, what: str, detail: str) -> None:
        super().__init__(f"{host}: {what}: {detail}")
        self.host, self.what, self.detail = host, what, detail


def _tail(result: CommandResult) -> str:
    text = (result.err.strip() or result.out.strip()).splitlines()
    return " | ".join(text[-3:])[:400] or f"exit status {result.exit_status}"


class HostSession:
    def __init__(self, target: SSHTarget, *, known_hosts: KnownHosts, bastions: BastionPool) -> None:
        self.target = target
        self.name = target.name
        self._known_hosts, self._bastions = known_hosts, bastions
        self._open()

    def _open(self) -> None:
        from installer.checks.session import connect

        try:
            self.conn: Connection = connect(self.target, known_hosts=self._known_hosts, bastions=self._bastions)
            probe = self.conn.run("id -u; id -un", what=f"the first command on {self.name}")
        except SSHError as exc:
            raise RemoteError(self.name, "connecting", exc.message) from None
        lines = probe.out.split()
        if not probe.ok or len(lines) < 2:
            raise RemoteError(self.name, "connecting", f"`id` failed: {_tail(probe)}")
        self.is_root = lines[0] == "0"
        self.user = lines[1]

    def reopen(self) -> None:
        """A new connection in place of one a reboot ended (whoever holds this session keeps it);
        raises RemoteError while the host does not answer."""
        with contextlib.suppress(Exception):  # already broken: nothing to close cleanly
            self.conn.close()
        self._open()

    def close(self) -> None:
        self.conn.close()

    def root(self, command: str, *, what: str, stdin: bytes = b"", timeout: float | None = None,
             check: bool = True) -> CommandResult:
        """Run `command` as root; with `check`, a non-zero exit raises RemoteError."""
        try:
            result, _ = run_as_root(self.conn, command, is_root=self.is_root, user=self.user,
                                    sudo_password=self.target.sudo_password, stdin=stdin, timeout=timeout,
                                    what=f"{what} on {self.name}")
        except SSHError as exc:
            raise RemoteError(self.name, what, exc.message) from None
        if check and not result.ok:
            raise RemoteError(self.name, what, _tail(result))
        return result

    def read(self, path: str, *, what: str = "") -> bytes | None:
        res = self.root(f"if [ -e {shlex.quote(path)} ]; then cat {shlex.quote(path)}; else exit 3; fi",
                        what=what or f"reading {path}", check=False)
        if res.exit_status == 3:
            return None
        if not res.ok:
            raise RemoteError(self.name, what or f"reading {path}", _tail(res))
        return res.stdout

    def write(self, path: str, data: bytes, *, mode: int = 0o644, what: str = "") -> None:
        """Write `path` atomically (a temporary file beside it, fsynced, renamed)."""
        q = shlex.quote(path)
        tmp = shlex.quote(f"{path}.tmp-{time.monotonic_ns()}")
        self.root(f"mkdir -p \"$(dirname {q})\" && cat > {tmp} && chmod {mode:o} {tmp} && sync {tmp} && mv -f {tmp} {q}",
                  stdin=data, what=what or f"writing {path}")

    def upload(self, local: Path, path: str, *, sha256: str, what: str = "") -> None:
        """Copy `local` to `path` (mode 0755) and check its SHA-256 there."""
        q = shlex.quote(path)
        res = self.root(f"mkdir -p \"$(dirname {q})\" && cat > {q} && chmod 0755 {q} && sync {q} && sha256sum {q}",
                        stdin=local.read_bytes(), timeout=max(self.conn.command_timeout, 600),
                        what=what or f"copying the bundle to {path}")
        got = res.out.split()[0] if res.out.split() else ""
        if got != sha256:
            raise RemoteError(self.name, what or "copying the bundle",
                              f"{path} has SHA-256 {got or '?'} after the copy, expected {sha256}")

    def sha256(self, path: str) -> str | None:
        res = self.root(f"sha256sum {shlex.quote(path)} 2>/dev/null", what=f"checksumming {path}", check=False)
        return res.out.split()[0] if res.ok and res.out.split() else None
