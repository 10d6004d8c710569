"""Host key verification against an OpenSSH known_hosts file.

- known key: accepted;
- changed key (the host is in known_hosts with another key): always refused (`HostKeyChanged`,
  raised by paramiko as BadHostKeyException and translated by the client);
- unknown key: refused with its SHA256 fingerprint (`HostKeyUnknown`), unless new keys are
  accepted — by flag/config, or by a `confirm` callback (the TUI's prompt) — in which case it is
  appended to known_hosts in OpenSSH's format and used from then on.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from installer.ssh.errors import HostKeyUnknown

log = logging.getLogger("dvp.ssh")

# Called with (known_hosts name, key type, fingerprint); True accepts the key.
ConfirmHostKey = Callable[[str, str, str], bool]

_write_lock = threading.Lock()


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of the key blob's digest."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def key_label(key: paramiko.PKey) -> str:
    """`ED25519 SHA256:...` as ssh-keygen -l shows it."""
    kind = key.get_name().removeprefix("ssh-").split("-")[0].upper()
    return f"{kind} {fingerprint(key)}"


class KnownHosts:
    """One known_hosts file shared by all connections of a run."""

    def __init__(self, path: Path, *, accept_new: bool = False, confirm: ConfirmHostKey | None = None) -> None:
        self.path = path
        self.accept_new = accept_new
        self.confirm = confirm

    def load_into(self, client: paramiko.SSHClient) -> None:
        if self.path.is_file():
            client.load_host_keys(str(self.path))

    def policy(self) -> paramiko.MissingHostKeyPolicy:
        return _Policy(self)

    def known_key(self, name: str) -> paramiko.PKey | None:
        """The first key recorded for `name`, if any (to describe a changed key)."""
        if not self.path.is_file():
            return None
        keys = paramiko.HostKeys(str(self.path)).lookup(name)
        if not keys:
            return None
        return next(iter(keys.values()))

    def add(self, name: str, key: paramiko.PKey) -> None:
        """Append `name key` to the file (created 0600 in a 0700 directory if missing)."""
        self.add_line(known_hosts_line(name, key))
        log.info("recorded host key of %s in %s: %s", name, self.path, key_label(key))

    def add_line(self, line: str) -> None:
        """Append one known_hosts line (what the TUI's host-key screen writes once trusted)."""
        with _write_lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="ascii") as fh:
                fh.write(line.rstrip("\n") + "\n")


def known_hosts_line(name: str, key: paramiko.PKey) -> str:
    return f"{name} {key.get_name()} {key.get_base64()}"


class _Policy(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    def __init__(self, known: KnownHosts) -> None:
        self.known = known

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        label = key_label(key)
        kind, fp = label.split(" ", 1)
        accepted = self.known.accept_new or (self.known.confirm is not None and self.known.confirm(hostname, kind, fp))
        if not accepted:
            log.warning("refused unknown host key of %s: %s", hostname, label)
            raise HostKeyUnknown(hostname, kind, fp, str(self.known.path),
                                 known_hosts_line=known_hosts_line(hostname, key))
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known.add(hostname, key)
