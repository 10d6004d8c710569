"""A running command on a host, the same for SSH channels and local subprocesses.

`Process` lets callers talk to a command while it runs (sudo's password prompt needs that);
`Connection.run()` is the simple form: send stdin, wait with a deadline, get a `CommandResult`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from installer.ssh.errors import CommandTimeout


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind."""

    exit_status: int
    stdout: bytes
    stderr: bytes
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


class Process(ABC):
    """A command that is running; output accumulates in `stdout` and `stderr` as `pump()` reads it."""

    def __init__(self) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.started = time.monotonic()

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def close_stdin(self) -> None: ...

    @abstractmethod
    def pump(self, timeout: float) -> None:
        """Read whatever output arrives within `timeout` seconds (returns early on data)."""

    @abstractmethod
    def finished(self) -> bool:
        """True once the command exited and all its output was read."""

    @abstractmethod
    def exit_status(self) -> int: ...

    @abstractmethod
    def kill(self) -> None: ...

    def wait_until(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Pump until `predicate()` holds (True), the command ends or the deadline passes (False)."""
        while True:
            if predicate():
                return True
            if self.finished():
                return predicate()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.pump(min(remaining, 0.5))

    def result(self, deadline: float, *, what: str) -> CommandResult:
        """Wait for the end; on timeout kill the command and raise `CommandTimeout`."""
        if not self.wait_until(self.finished, deadline):
            self.kill()
            raise CommandTimeout(f"{what} did not finish within {deadline - self.started:.1f} s")
        return CommandResult(
            exit_status=self.exit_status(),
            stdout=bytes(self.stdout),
            stderr=bytes(self.stderr),
            duration=time.monotonic() - self.started,
        )


class Connection(ABC):
    """An open way to run commands on one host (SSH or local)."""

    kind: str = "?"

    def __init__(self, name: str, *, command_timeout: float) -> None:
        self.name = name
        self.command_timeout = command_timeout

    @abstractmethod
    def start(self, command: str) -> Process:
        """Start `command` under the host's shell (`sh -c` semantics)."""

    @abstractmethod
    def describe(self) -> str:
        """How this host is reached, e.g. `ssh root@10.0.0.1:22 (key files ...)`; no secrets."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""

    def run(self, command: str, *, stdin: bytes = b"", timeout: float | None = None, what: str = "") -> CommandResult:
        deadline = time.monotonic() + (timeout if timeout is not None else self.command_timeout)
        proc = self.start(command)
        try:
            if stdin:
                proc.write(stdin)
            proc.close_stdin()
            return proc.result(deadline, what=what or f"command on {self.name}")
        except BaseException:
            proc.kill()
            raise
