"""SSH connections with paramiko: connect (directly or through a bastion) within one overall
deadline, verify the host key, authenticate, and run commands on session channels.

The connect deadline covers TCP, handshake and authentication together: a watchdog closes the
transport when it expires, so a host that accepts TCP but never answers cannot stall a worker.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import socket
import threading
import time
from typing import Any

import paramiko

from installer.ssh.bastion import BastionPool
from installer.ssh.errors import AuthFailed, ConnectTimeout, HostKeyChanged, SSHError, Unreachable
from installer.ssh.hostkeys import KnownHosts, key_label
from installer.ssh.process import Connection, Process
from installer.ssh.target import Endpoint

log = logging.getLogger("dvp.ssh")
WRITE_CHUNK = 64 * 1024
"""Bytes handed to paramiko's `sendall` at a time: it re-slices what is left after every packet,
which is quadratic in the size (an 85 MiB upgrade bundle took ~2 minutes of copying bytes)."""


class ChannelProcess(Process):
    """A command on an SSH session channel."""

    def __init__(self, channel: paramiko.Channel, command: str) -> None:
        super().__init__()
        self._chan = channel
        channel.exec_command(command)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        with contextlib.suppress(OSError, EOFError):
            for start in range(0, len(view), WRITE_CHUNK):
                self._chan.sendall(view[start:start + WRITE_CHUNK].tobytes())

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._chan.shutdown_write()

    def _drain(self) -> bool:
        got = False
        while self._chan.recv_ready():
            self.stdout.extend(self._chan.recv(65536))
            got = True
        while self._chan.recv_stderr_ready():
            self.stderr.extend(self._chan.recv_stderr(65536))
            got = True
        return got

    def pump(self, timeout: float) -> None:
        if self._drain() or self.finished():
            return
        with contextlib.suppress(OSError, ValueError):
            select.select([self._chan], [], [], timeout)
        self._drain()

    def finished(self) -> bool:
        return (
            self._chan.exit_status_ready()
            and self._chan.eof_received
            and not self._chan.recv_ready()
            and not self._chan.recv_stderr_ready()
        )

    def exit_status(self) -> int:
        return self._chan.recv_exit_status() if self._chan.exit_status_ready() else -1

    def kill(self) -> None:
        self._chan.close()


def open_client(
    endpoint: Endpoint,
    *,
    known_hosts: KnownHosts,
    timeout: float,
    sock: Any = None,
) -> paramiko.SSHClient:
    """Connect, verify the host key and authenticate within `timeout` seconds overall."""
    started = time.monotonic()
    client = paramiko.SSHClient()
    known_hosts.load_into(client)
    client.set_missing_host_key_policy(known_hosts.policy())
    where = f"{endpoint.address}:{endpoint.port}"
    if sock is None:
        try:
            sock = socket.create_connection((endpoint.address, endpoint.port), timeout=timeout)
        except TimeoutError:
            raise ConnectTimeout(f"no TCP connection to {where} within {timeout:g} s") from None
        except socket.gaierror as exc:
            raise Unreachable(f"cannot resolve {endpoint.address}: {exc.strerror}") from None
        except ConnectionRefusedError:
            raise Unreachable(f"connection to {where} refused (is sshd listening on port {endpoint.port}?)") from None
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                raise Unreachable(f"no route to {where}") from None
            raise Unreachable(f"cannot connect to {where}: {exc.strerror or exc}") from None
    remaining = max(0.1, timeout - (time.monotonic() - started))
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        with contextlib.suppress(Exception):
            sock.shutdown(socket.SHUT_RDWR) if isinstance(sock, socket.socket) else sock.close()
        with contextlib.suppress(Exception):
            client.close()

    watchdog = threading.Timer(remaining, expire)
    watchdog.daemon = True
    watchdog.start()
    log.debug("connecting to %s (%s)", endpoint.describe(), endpoint.methods())
    try:
        client.connect(
            hostname=endpoint.address,
            port=endpoint.port,
            username=endpoint.user,
            key_filename=[str(p) for p in endpoint.key_files] or None,
            passphrase=endpoint.key_passphrase.reveal() if endpoint.key_passphrase else None,
            password=endpoint.password.reveal() if endpoint.password else None,
            allow_agent=endpoint.use_agent,
            look_for_keys=not endpoint.key_files,
            sock=sock,
            timeout=remaining,
            banner_timeout=remaining,
            auth_timeout=remaining,
            channel_timeout=remaining,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyChanged(
            endpoint.known_hosts_name, key_label(exc.key), key_label(exc.expected_key), str(known_hosts.path)
        ) from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise AuthFailed(
            f"a private key for {endpoint.describe()} is encrypted and no passphrase is set",
            fix="set ssh.privateKeyPassphrase, or load the key into the SSH agent",
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        if expired.is_set():
            raise ConnectTimeout(f"authentication on {where} did not finish within {timeout:g} s") from None
        raise AuthFailed(f"authentication as {endpoint.user} on {where} failed (tried: {endpoint.methods()})") from None
    except SSHError:
        client.close()
        raise
    except (paramiko.SSHException, EOFError, OSError) as exc:
        client.close()
        if expired.is_set():
            raise ConnectTimeout(f"no SSH handshake with {where} within {timeout:g} s") from None
        if "No authentication methods available" in str(exc):
            raise AuthFailed(
                f"no credentials to offer {where}: no key files, agent keys or password",
                fix="set ssh.privateKeyFiles or ssh.password, or start an SSH agent",
            ) from None
        raise SSHError(f"SSH to {where} failed: {exc or type(exc).__name__}") from None
    finally:
        watchdog.cancel()
    if expired.is_set():
        client.close()
        raise ConnectTimeout(f"no SSH session with {where} within {timeout:g} s")
    return client


class SSHConnection(Connection):
    """An authenticated SSH connection to one host."""

    kind = "ssh"

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        *,
        known_hosts: KnownHosts,
        connect_timeout: float,
        command_timeout: float,
        bastion: Endpoint | None = None,
        bastions: BastionPool | None = None,
    ) -> None:
        super().__init__(name, command_timeout=command_timeout)
        self.endpoint = endpoint
        self.bastion = bastion
        started = time.monotonic()
        sock = None
        if bastion is not None:
            pool = bastions or BastionPool(known_hosts)
            sock = pool.open_channel(bastion, endpoint, timeout=connect_timeout)
        # through a bastion, what its channel took is off the budget; directly, the whole budget
        # (and the configured figure in a timeout's message, not 1.49999 s for 1.5)
        remaining = connect_timeout if sock is None else max(0.1, connect_timeout - (time.monotonic() - started))
        self._client = open_client(endpoint, known_hosts=known_hosts, timeout=remaining, sock=sock)
        transport = self._client.get_transport()
        assert transport is not None
        self._transport = transport
        self.host_key = key_label(transport.get_remote_server_key())
        self.connect_seconds = time.monotonic() - started

    def start(self, command: str) -> Process:
        try:
            channel = self._transport.open_session(timeout=self.command_timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise SSHError(f"cannot open a session on {self.name}: {exc or type(exc).__name__}") from None
        return ChannelProcess(channel, command)

    def describe(self) -> str:
        via = f" via {self.bastion.describe()}" if self.bastion else ""
        return f"ssh {self.endpoint.describe()}{via}"

    def close(self) -> None:
        self._client.close()
