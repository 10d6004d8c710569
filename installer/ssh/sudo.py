"""Running commands as root: directly when the login user is root, otherwise through
`sudo -S` with a small handshake so that the password is only ever written to sudo itself.

The wrapped command first prints a ready marker on stderr. We wait for either sudo's prompt
(our own `-p` string) or that marker: on the prompt we send the password once; on the marker
we know sudo is done reading stdin and hand over the real stdin. A second prompt means the
password was rejected, and we stop — so a NOPASSWD rule or cached credentials can never make
the password reach the command's stdin, and it never appears in any output or error.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence

from installer.config.secrets import Secret
from installer.ssh.errors import SudoError
from installer.ssh.process import CommandResult, Connection, Process

PROMPT = b"[dvp-sudo-password]"
READY = b"[dvp-sudo-ready]"
KEEP_ENV = ("DVP_HOST_ROOT",)


def sudo_command(command: str, *, keep_env: Sequence[str] = KEEP_ENV) -> str:
    """The shell command that runs `command` as root through sudo, passing `keep_env` along
    (sudo resets the environment; the login shell expands the variables before sudo runs)."""
    env = " ".join(f'{name}="${{{name}:-}}"' for name in keep_env)
    inner = f"printf '%s\\n' {shlex.quote(READY.decode())} >&2; exec sh -c \"$1\""
    return (
        f"sudo -S -p {shlex.quote(PROMPT.decode())} -- env {env} "
        f"sh -c {shlex.quote(inner)} dvp {shlex.quote(command)}"
    )


def _scrub(text: str, password: Secret | None) -> str:
    if password and password.reveal() in text:
        text = text.replace(password.reveal(), "***")
    return text


def _first_line(data: bytes, password: Secret | None) -> str:
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    lines = [ln.replace(PROMPT.decode(), "").strip() for ln in lines]
    lines = [ln for ln in lines if ln and not ln.startswith("We trust you have received")]
    return _scrub(lines[-1] if lines else "", password)


def elevate(
    conn: Connection,
    command: str,
    *,
    is_root: bool,
    user: str,
    sudo_password: Secret | None,
    deadline: float,
) -> tuple[Process, str]:
    """Start `command` as root and return it once it runs (its stdin is ours from then on),
    with how root was obtained. Raises `SudoError` when sudo does not let us in."""
    if is_root:
        return conn.start(command), f"logged in as {user}"
    proc = conn.start(sudo_command(command))
    try:
        def prompted(count: int) -> bool:
            return bytes(proc.stderr).count(PROMPT) >= count

        def ready() -> bool:
            return READY in proc.stderr

        proc.wait_until(lambda: prompted(1) or ready(), deadline)
        how = f"sudo as {user} (no password asked)"
        if not ready() and prompted(1):
            if sudo_password is None:
                raise SudoError(
                    f"sudo asks {user} for a password and none is configured",
                    reason="password_needed",
                    fix="set ssh.sudoPassword (fromFile or fromEnv), or allow the user NOPASSWD in sudoers",
                )
            proc.write(sudo_password.reveal().encode() + b"\n")
            proc.wait_until(lambda: prompted(2) or ready(), deadline)
            if prompted(2):
                raise SudoError(
                    f"sudo rejected the password of {user}",
                    reason="password_rejected",
                    fix="check ssh.sudoPassword for this host",
                )
            how = f"sudo as {user} (password accepted)"
        if not ready():
            if not proc.finished():
                raise SudoError(f"sudo did not answer within the command timeout on {conn.name}", reason="timeout")
            status = proc.exit_status()
            detail = _first_line(bytes(proc.stderr), sudo_password)
            if status == 127 or "not found" in detail:
                raise SudoError(
                    f"sudo is not installed (user {user} is not root)",
                    reason="not_installed",
                    fix="install sudo and allow the user to run commands as root, or connect as root",
                )
            if "tty" in detail:
                raise SudoError(
                    f"sudo requires a terminal for {user}: {detail}",
                    reason="requiretty",
                    fix="remove `Defaults requiretty` for this user in sudoers",
                )
            raise SudoError(
                f"sudo refused {user}: {detail or f'exit status {status}'}",
                reason="not_allowed",
                fix=f"allow {user} to run commands as root in sudoers (e.g. `{user} ALL=(ALL:ALL) ALL`)",
            )
        # sudo is done with stdin; drop its chatter up to and including our marker.
        tail = bytes(proc.stderr).split(READY, 1)[1].lstrip(b"\n")
        proc.stderr[:] = tail
        return proc, how
    except BaseException:
        proc.kill()
        raise


def run_as_root(
    conn: Connection,
    command: str,
    *,
    is_root: bool,
    user: str,
    sudo_password: Secret | None,
    stdin: bytes = b"",
    timeout: float | None = None,
    what: str = "",
) -> tuple[CommandResult, str]:
    """Run `command` as root to its end; returns the result and how root was obtained."""
    deadline = time.monotonic() + (timeout if timeout is not None else conn.command_timeout)
    proc, how = elevate(conn, command, is_root=is_root, user=user, sudo_password=sudo_password, deadline=deadline)
    try:
        if stdin:
            proc.write(stdin)
        proc.close_stdin()
        return proc.result(deadline, what=what or f"command on {conn.name}"), how
    except BaseException:
        proc.kill()
        raise
