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
from controlplane.nodehandler.domainxml import METADATA_NS


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


def _domain_xml(name: str, uid: str, node: str | None, disk: str) -> str:
    meta = (f"<metadata><dvp:instance xmlns:dvp='{METADATA_NS}'><dvp:uid>{uid}</dvp:uid>"
            f"<dvp:namespace>ns</dvp:namespace><dvp:name>{name}</dvp:name><dvp:node>{node}</dvp:node></dvp:instance>"
            "</metadata>") if node else ""
    return (f"<domain type='test'><name>{name}</name><uuid>{uid}</uuid>{meta}<memory>1024</memory><os><type>hvm</type>"
            f"</os><devices><disk type='file' device='disk'><source file='{disk}'/><target dev='vda'/></disk>"
            "</devices></domain>")


def test_active_owned_reads_only_the_running_domains_of_this_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Volume deletes and snapshots ask which files running domains hold: only active domains with
    this node's metadata are listed and read (libvirt's test driver: real listing flags)."""
    conn = libvirt.open("test:///default")
    d = Domains("test:///default", prefix="dvp-", node="n1")
    monkeypatch.setattr(d, "connect", lambda: conn)  # the test driver has no keepalive for connect()
    uids = {n: f"00000000-0000-4000-8000-00000000000{i}" for i, n in enumerate(("run", "stopped", "other", "bare"))}
    for name, node in (("run", "n1"), ("stopped", "n1"), ("other", "n2"), ("bare", None)):
        dom = conn.defineXML(_domain_xml(f"dvp-{name}", uids[name], node, f"/v/{name}.qcow2"))
        if name != "stopped":
            dom.create()
    try:
        active = d.active_owned()
        assert set(active) == {uids["run"]}
        meta, xml = active[uids["run"]]
        assert meta["name"] == "dvp-run" and meta["domain"] == "dvp-run" and "/v/run.qcow2" in xml
        assert set(d.owned()) == {uids["run"], uids["stopped"]}
    finally:
        for uid in uids.values():
            dom = conn.lookupByUUIDString(uid)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        conn.close()
