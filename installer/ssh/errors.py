"""Errors of the SSH layer, each with a message fit for a user: what was tried on which host,
what happened, and (in `fix`) what to do. Messages never contain secrets."""

from __future__ import annotations


class SSHError(Exception):
    """Something went wrong reaching or using a host."""

    fix: str = ""

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        if fix:
            self.fix = fix


class Unreachable(SSHError):
    """No TCP connection: refused, no route, unknown name."""

    fix = "check the address and port, that sshd runs on the host, and firewalls in between"


class ConnectTimeout(Unreachable):
    """No connection, handshake or authentication within the connect timeout."""

    fix = "check that the host is up and reachable; raise ssh.connectTimeoutSeconds for slow links"


class HostKeyUnknown(SSHError):
    """The host's key is not in known_hosts and new keys are not accepted."""

    def __init__(self, host: str, key_type: str, fingerprint: str, known_hosts: str, *, known_hosts_line: str = "") -> None:
        self.host, self.key_type, self.fingerprint = host, key_type, fingerprint
        self.known_hosts = known_hosts
        self.known_hosts_line = known_hosts_line
        """The line that trusts this key (`name type base64`), for a front end that asks the user."""
        super().__init__(
            f"host key of {host} is not in {known_hosts}: {key_type} {fingerprint}",
            fix=(
                "compare the fingerprint with the host's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
                "on the host), then re-run with --accept-new-host-keys or add the key to known_hosts"
            ),
        )


class HostKeyChanged(SSHError):
    """The host offers a key different from the one in known_hosts: always refused."""

    def __init__(self, host: str, offered: str, known: str, known_hosts: str) -> None:
        self.host, self.offered, self.known = host, offered, known
        super().__init__(
            f"host key of {host} CHANGED: known_hosts has {known}, the host offers {offered} "
            "(possible man-in-the-middle; refused)",
            fix=(
                f"if the host was reinstalled, verify its new key out of band, then remove the old entry: "
                f"ssh-keygen -R '{host}' -f {known_hosts}"
            ),
        )


class AuthFailed(SSHError):
    """The server refused every credential tried."""

    fix = "check ssh.user and the key files, agent or password configured for this host"


class CommandTimeout(SSHError):
    """A remote command did not finish within the command timeout."""

    fix = "check the host's load; raise ssh.commandTimeoutSeconds if the host is just slow"


class SudoError(SSHError):
    """sudo is missing, asks for a password we don't have, rejects it, or refuses the user."""

    def __init__(self, message: str, *, reason: str, fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.reason = reason
