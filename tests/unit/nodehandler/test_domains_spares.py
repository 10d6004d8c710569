"""Long libvirt calls (a domain's start, a graceful destroy) run on spare connections of their
own: libvirtd serves at most `max_client_requests` calls of one connection at a time (5 by
default), so starts on the shared connection ran five at a time and every status read of the
node waited behind them. Spares are reused and a dead one is dropped."""

from __future__ import annotations

import threading
from typing import Any

import libvirt
import pytest

from controlplane.nodehandler import domains as domains_mod
from controlplane.nodehandler.domains import Domains


class Conn:
    """A libvirt connection whose createXML waits until the test lets it go."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.alive = True
        self.created: list[str] = []

    def registerCloseCallback(self, *args: Any) -> None:  # noqa: N802
        pass

    def domainEventRegisterAny(self, *args: Any) -> int:  # noqa: N802
        return 1

    def setKeepAlive(self, *args: int) -> None:  # noqa: N802
        pass

    def getLibVersion(self) -> int:  # noqa: N802
        return 9_000_000

    def isAlive(self) -> bool:  # noqa: N802
        return self.alive

    def createXML(self, xml: str, flags: int) -> object:  # noqa: N802
        assert self.release.wait(10)
        self.created.append(xml)
        return object()

    def close(self) -> int:
        self.alive = False
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
    d.close()
    assert not conns[1].alive
