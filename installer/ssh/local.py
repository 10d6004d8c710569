"""The local connection for a host whose address is `localhost`: commands run as subprocesses
of `dvp` itself (as the user running it), no SSH involved. sudo works on top of it the same
way it does over SSH."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time

from installer.ssh.process import Connection, Process


class LocalProcess(Process):
    """A local subprocess: `command` is run with `sh -c`, or given as an argv list."""

    def __init__(self, command: str | list[str]) -> None:
        super().__init__()
        self._proc = subprocess.Popen(
            ["/bin/sh", "-c", command] if isinstance(command, str) else command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._proc.stdout and self._proc.stderr and self._proc.stdin
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._proc.stdout, selectors.EVENT_READ, self.stdout)
        self._sel.register(self._proc.stderr, selectors.EVENT_READ, self.stderr)
        self._open = 2

    def write(self, data: bytes) -> None:
        assert self._proc.stdin
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass

    def close_stdin(self) -> None:
        assert self._proc.stdin
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()

    def pump(self, timeout: float) -> None:
        if self._open == 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout)
            return
        for key, _ in self._sel.select(timeout):
            chunk = os.read(key.fd, 65536)
            if chunk:
                key.data.extend(chunk)
            else:
                self._sel.unregister(key.fileobj)
                self._open -= 1

    def finished(self) -> bool:
        return self._open == 0 and self._proc.poll() is not None

    def exit_status(self) -> int:
        code = self._proc.poll()
        return -1 if code is None else code

    def kill(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._sel.close()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream:
                stream.close()


class LocalConnection(Connection):
    kind = "local"

    def __init__(self, name: str, *, command_timeout: float) -> None:
        super().__init__(name, command_timeout=command_timeout)
        self.opened_at = time.monotonic()

    def start(self, command: str) -> Process:
        return LocalProcess(command)

    def describe(self) -> str:
        import getpass

        return f"local connection as {getpass.getuser()} (no SSH)"
