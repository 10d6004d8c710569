"""A `Connection` over OpenSSH's `ssh` client (the benchmark's peer): one master connection
per host (ControlMaster), every command a separate `ssh` invocation through it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from installer.ssh.errors import AuthFailed, SSHError
from installer.ssh.local import LocalProcess
from installer.ssh.process import Connection, Process
from installer.ssh.target import SSHTarget


class OpenSSHConnection(Connection):
    kind = "ssh"

    def __init__(self, target: SSHTarget, *, control_dir: Path) -> None:
        super().__init__(target.name, command_timeout=target.command_timeout)
        ep = target.endpoint
        self._dest = f"{ep.user}@{ep.address}"
        self._opts = [
            "-p", str(ep.port),
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={target.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={int(target.connect_timeout)}",
            "-o", f"ControlPath={control_dir}/%C",
        ]
        for key in ep.key_files:
            self._opts += ["-i", str(key)]
        res = subprocess.run(
            ["ssh", *self._opts, "-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-fN", self._dest],
            capture_output=True, text=True, timeout=target.connect_timeout + 5,
        )
        if res.returncode != 0:
            raise AuthFailed(f"ssh to {self._dest} failed: {res.stderr.strip()}")

    def start(self, command: str) -> Process:
        return LocalProcess(["ssh", *self._opts, self._dest, command])

    def describe(self) -> str:
        return f"OpenSSH ssh {self._dest}"

    def close(self) -> None:
        try:
            subprocess.run(["ssh", *self._opts, "-O", "exit", self._dest], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired as exc:
            raise SSHError(f"ssh -O exit {self._dest} hung") from exc
