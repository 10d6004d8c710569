"""Closing the libvirt connection of a node handler whose libvirt went away must not hang:
libvirt runs the connection's close callback synchronously, on the thread whose call found
the connection dead, and a handler that could not close never stopped on SIGTERM."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import libvirt
import pytest

from controlplane.nodehandler import domains as domains_mod
from controlplane.nodehandler.domains import Domains


class DeadOnDeregister:
    """A connection whose peer is gone: the first RPC finds it closed and says so first."""

    def __init__(self) -> None:
        self.close_cb: Callable[..., None] | None = None
        self.closed = False

    def registerCloseCallback(self, cb: Callable[..., None], opaque: object) -> None:  # noqa: N802
        self.close_cb = cb

    def domainEventRegisterAny(self, *args: Any) -> int:  # noqa: N802
        return 7

    def setKeepAlive(self, *args: int) -> None:  # noqa: N802
        pass

    def getLibVersion(self) -> int:  # noqa: N802
        return 9_000_000

    def isAlive(self) -> bool:  # noqa: N802
        return False

    def domainEventDeregisterAny(self, callback_id: int) -> None:  # noqa: N802
        assert self.close_cb is not None
        self.close_cb(self, libvirt.VIR_CONNECT_CLOSE_REASON_EOF, None)
        raise libvirt.libvirtError("End of file while reading data")

    def close(self) -> int:
        self.closed = True
        return 0


def test_close_of_a_dead_connection_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = DeadOnDeregister()
    monkeypatch.setattr(domains_mod, "_ensure_event_loop", lambda: None)
    monkeypatch.setattr(libvirt, "open", lambda uri: conn)
    d = Domains("qemu+unix:///system?socket=/nowhere", prefix="dvp-", node="n1")
    assert d.connect() is conn
    closer = threading.Thread(target=d.close, daemon=True)
    closer.start()
    closer.join(5)
    assert not closer.is_alive(), "Domains.close() deadlocked on the close callback"
    assert conn.closed


def test_a_close_callback_for_an_old_connection_keeps_the_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = DeadOnDeregister(), DeadOnDeregister()
    monkeypatch.setattr(domains_mod, "_ensure_event_loop", lambda: None)
    opened = iter([old, new])
    monkeypatch.setattr(libvirt, "open", lambda uri: next(opened))
    d = Domains("qemu:///system", prefix="dvp-", node="n1")
    d.connect()
    assert d.connect() is new  # the old one is not alive
    assert old.close_cb is not None
    old.close_cb(old, libvirt.VIR_CONNECT_CLOSE_REASON_EOF, None)  # late news about the old one
    assert d._conn is new
