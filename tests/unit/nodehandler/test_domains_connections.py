"""The node handler's libvirt connections.

Closing the connection of a node handler whose libvirt went away must not hang: libvirt runs
the connection's close callback synchronously, on the thread whose call found the connection
dead, and a handler that could not close never stopped on SIGTERM.

Long calls (a domain's start, a graceful destroy) run on spare connections of their own:
libvirtd serves at most `max_client_requests` calls of one connection at a time (5 by default),
so starts on the shared connection ran five at a time and every status read of the node waited
behind them. Spares are reused and a dead one is dropped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import libvirt
import pytest

from controlplane.nodehandler import domains as domains_mod
from controlplane.nodehandler.domains import Domains


class FakeConn:
    """What `Domains.connect` calls on a new connection."""

    close_cb: Callable[..., None] | None = None

    def registerCloseCallback(self, cb: Callable[..., None], opaque: object) -> None:  # noqa: N802
        self.close_cb = cb

    def domainEventRegisterAny(self, *args: Any) -> int:  # noqa: N802
        return 7

    def setKeepAlive(self, *args: int) -> None:  # noqa: N802
        pass

    def getLibVersion(self) -> int:  # noqa: N802
        return 9_000_000


class DeadOnDeregister(FakeConn):
    """A connection whose peer is gone: the first RPC finds it closed and says so first."""

    def __init__(self) -> None:
        self.closed = False

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


class Conn(FakeConn):
    """A libvirt connection whose createXML waits until the test lets it go."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.alive = True
        self.closed = False
        self.created: list[str] = []

    def isAlive(self) -> bool:  # noqa: N802
        return self.alive

    def createXML(self, xml: str, flags: int) -> object:  # noqa: N802
        assert self.release.wait(10)
        self.created.append(xml)
        return object()

    def close(self) -> int:
        self.alive = False
        self.closed = True
        return 0


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Conn], threading.Event]:
    release = threading.Event()
    conns: list[Conn] = []

    def open_(uri: str) -> Conn:
        conns.append(Conn(release))
        return conns[-1]

    monkeypatch.setattr(domains_mod, "_ensure_event_loop", lambda: None)
    monkeypatch.setattr(libvirt, "open", open_)
    return conns, release


def test_starts_run_side_by_side_and_leave_the_shared_connection_free(
        opened: tuple[list[Conn], threading.Event]) -> None:
    conns, release = opened
    d = Domains("qemu:///system", prefix="dvp-", node="n1")
    shared = d.connect()
    starts = [threading.Thread(target=d.start, args=(f"<domain>{i}</domain>",), kwargs={"define": False})
              for i in range(6)]
    for t in starts:
        t.start()
    for _ in range(200):
        if len(conns) == 7:
            break
        threading.Event().wait(0.01)
    assert len(conns) == 7, "each of the 6 starts in flight has a connection of its own"
    assert d.connect() is shared and shared.created == []  # the shared one serves lookups meanwhile
    release.set()
    for t in starts:
        t.join(10)
    assert sorted(x for c in conns[1:] for x in c.created) == sorted(f"<domain>{i}</domain>" for i in range(6))
    d.start("<domain>again</domain>", define=False)
    assert len(conns) == 7, "an idle spare is reused, not a new connection opened"


def test_a_dead_spare_is_dropped_and_close_closes_the_spares(opened: tuple[list[Conn], threading.Event]) -> None:
    conns, release = opened
    release.set()
    d = Domains("qemu:///system", prefix="dvp-", node="n1")
    d.start("<domain>a</domain>", define=False)
    conns[0].alive = False  # libvirtd restarted meanwhile
    d.start("<domain>b</domain>", define=False)
    assert len(conns) == 2 and conns[1].created == ["<domain>b</domain>"]
    assert conns[0].closed, "the dead spare is closed, not left open"
    d.close()
    assert not conns[1].alive
