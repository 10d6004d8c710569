"""Bastion (jump host) connections, shared by every host that goes through the same bastion:
one authenticated transport per bastion, one `direct-tcpip` channel per target host (what
OpenSSH's ProxyJump does). The bastion's host key is verified like any other."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import paramiko

from installer.ssh.errors import SSHError, Unreachable
from installer.ssh.hostkeys import KnownHosts
from installer.ssh.target import Endpoint

if TYPE_CHECKING:
    pass


class BastionPool:
    def __init__(self, known_hosts: KnownHosts) -> None:
        self.known_hosts = known_hosts
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, int, str], paramiko.SSHClient] = {}
        self._errors: dict[tuple[str, int, str], SSHError] = {}

    def _client(self, bastion: Endpoint, timeout: float) -> paramiko.SSHClient:
        from installer.ssh.client import open_client

        key = (bastion.address, bastion.port, bastion.user)
        with self._lock:
            if key in self._errors:
                raise self._errors[key]
            client = self._clients.get(key)
            transport = client.get_transport() if client else None
            if client is None or transport is None or not transport.is_active():
                try:
                    client = open_client(bastion, known_hosts=self.known_hosts, timeout=timeout)
                except SSHError as exc:
                    err = type(exc)(f"bastion {bastion.describe()}: {exc.message}") if type(exc) in (SSHError, Unreachable) else exc
                    self._errors[key] = err
                    raise err from None
                self._clients[key] = client
            return client

    def open_channel(self, bastion: Endpoint, target: Endpoint, *, timeout: float) -> paramiko.Channel:
        client = self._client(bastion, timeout)
        transport = client.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip", (target.address, target.port), ("127.0.0.1", 0), timeout=timeout
            )
        except paramiko.ChannelException as exc:
            raise Unreachable(
                f"bastion {bastion.describe()} cannot reach {target.address}:{target.port}: {exc.text}"
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise Unreachable(
                f"bastion {bastion.describe()} did not open a channel to {target.address}:{target.port}: {exc}"
            ) from None

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
