"""The node handler's side of libvirt: one shared connection, domain lookups by instance uid,
the few domain operations the lifecycle needs, and lifecycle events turned into work-queue keys.

Calls that take seconds (starting a domain, a graceful destroy) each run on a spare connection of
their own: libvirtd serves at most `max_client_requests` (5 by default) calls of one connection at
a time, so ten domains started together on the shared one ran five at a time, and every lookup
and status read of the node waited behind them.

Domains are persistent (started, then defined with the same XML), named `<prefix><namespace>_<name>`, with the
instance uid as their UUID and in our metadata (see domainxml.py). A persistent domain keeps
its shut-off reason (guest shutdown, crash, destroyed), which tells a restarted handler why a
VM stopped while it was away. Everything here is thread-safe (libvirt connections are).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import libvirt

from controlplane.nodehandler.domainxml import parse_metadata

log = logging.getLogger(__name__)

STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "NoState", libvirt.VIR_DOMAIN_RUNNING: "Running",
    libvirt.VIR_DOMAIN_BLOCKED: "Blocked", libvirt.VIR_DOMAIN_PAUSED: "Paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "ShuttingDown", libvirt.VIR_DOMAIN_SHUTOFF: "Shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "Crashed", libvirt.VIR_DOMAIN_PMSUSPENDED: "PMSuspended",
}
ACTIVE_STATES = {libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_PAUSED,
                 libvirt.VIR_DOMAIN_SHUTDOWN, libvirt.VIR_DOMAIN_PMSUSPENDED, libvirt.VIR_DOMAIN_NOSTATE}
ABSENT = "Absent"

_event_loop_lock = threading.Lock()
_event_loop_started = False


def _quiet(_ctx: object, _err: object) -> None:
    pass


def _ensure_event_loop() -> None:
    """libvirt's default event implementation, run by one daemon thread per process (it must be
    registered before the first connection is opened)."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        # errors come back as exceptions (handled or reported there); libvirt would also print them
        libvirt.registerErrorHandler(_quiet, None)

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


@dataclass(frozen=True)
class DomainStatus:
    """What the handler needs to know about one domain, read in one go."""

    name: str
    state: int
    reason: int
    xml: str
    persistent: bool = True

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, f"State{self.state}")

    @property
    def shutoff_reason(self) -> int | None:
        return self.reason if self.state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED) else None


class Domains:
    def __init__(self, uri: str, *, prefix: str, node: str) -> None:
        self.uri = uri
        self.prefix = prefix
        self.node = node
        self._conn: libvirt.virConnect | None = None
        # re-entrant: libvirt runs the close callback (`_closed`) synchronously inside whichever
        # call of this thread found the connection dead, possibly while the lock is held here
        self._lock = threading.RLock()
        self._listeners: list[Callable[[str], None]] = []
        self._callback_id: int | None = None
        self._spares: list[libvirt.virConnect] = []
        """Idle connections for long calls (`_spare`); one per call at a time, kept for the next."""

    # -- connection ------------------------------------------------------------------------------
    def connect(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                self._conn = None
            _ensure_event_loop()
            conn = libvirt.open(self.uri)
            conn.registerCloseCallback(self._closed, None)
            self._callback_id = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None)
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, self._on_agent, None)
            conn.setKeepAlive(5, 3)
            self._conn = conn
            log.info("connected to libvirt at %s (version %s)", self.uri, conn.getLibVersion())
            return conn

    @contextlib.contextmanager
    def _spare(self) -> Iterator[libvirt.virConnect]:
        """A connection of this call's own (an idle spare, or a new one), kept afterwards for the
        next call; a spare found dead (libvirtd restarted meanwhile) is closed and dropped."""
        conn = None
        dead: list[libvirt.virConnect] = []
        with self._lock:
            while self._spares and conn is None:
                candidate = self._spares.pop()
                try:
                    alive = bool(candidate.isAlive())
                except libvirt.libvirtError:
                    alive = False
                if alive:
                    conn = candidate
                else:
                    dead.append(candidate)
        for gone in dead:
            with contextlib.suppress(libvirt.libvirtError):
                gone.close()
        if conn is None:
            _ensure_event_loop()
            conn = libvirt.open(self.uri)
            conn.setKeepAlive(5, 3)  # as the shared one: a libvirtd that stops answering fails the call
        try:
            yield conn
        finally:
            with self._lock:
                self._spares.append(conn)

    def _closed(self, conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        log.warning("libvirt connection to %s closed (reason %s); reconnecting on next use", self.uri, reason)
        with self._lock:
            if self._conn is conn:
                self._conn = None

    def close(self) -> None:
        """Close the connection. The libvirt calls run outside the lock: on a connection that
        died they run `_closed` first, on this thread."""
        with self._lock:
            conn, self._conn = self._conn, None
            callback_id, self._callback_id = self._callback_id, None
            spares, self._spares = self._spares, []
        for spare in spares:
            with contextlib.suppress(libvirt.libvirtError):
                spare.close()
        if conn is None:
            return
        if callback_id is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(callback_id)
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    # -- events ----------------------------------------------------------------------------------
    def on_event(self, listener: Callable[[str], None]) -> None:
        """`listener(uid)` runs (on libvirt's event thread) when a domain changes state."""
        self._listeners.append(listener)

    def _notify(self, dom: libvirt.virDomain) -> None:
        uid = dom.UUIDString()
        for listener in self._listeners:
            try:
                listener(uid)
            except Exception:
                log.exception("domain event listener failed")

    def _on_lifecycle(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, _detail: int,
                      _opaque: object) -> None:
        if event not in (libvirt.VIR_DOMAIN_EVENT_DEFINED, libvirt.VIR_DOMAIN_EVENT_UNDEFINED):
            self._notify(dom)  # (our own define/undefine change nothing the status shows)

    def _on_agent(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, _state: int, _reason: int,
                  _opaque: object) -> None:
        self._notify(dom)

    # -- lookups ---------------------------------------------------------------------------------
    def name_for(self, namespace: str, name: str) -> str:
        return f"{self.prefix}{namespace}_{name}"

    def lookup(self, uid: str, conn: libvirt.virConnect | None = None) -> libvirt.virDomain | None:
        """The domain with this uid, on `conn` (default: the shared connection); None when absent."""
        try:
            return (conn or self.connect()).lookupByUUIDString(uid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def status(self, uid: str) -> DomainStatus | None:
        """The domain's state and live XML, or None when no domain has this uid."""
        dom = self.lookup(uid)
        if dom is None:
            return None
        try:
            state, reason = dom.state()
            xml = dom.XMLDesc(0)
            return DomainStatus(name=dom.name(), state=state, reason=reason, xml=xml,
                                persistent=bool(dom.isPersistent()))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def _ours(self, flags: int) -> Iterator[tuple[str, dict[str, str], str]]:
        """(uid, metadata, XML) of each domain listed with `flags` whose metadata names this node:
        one listing and one XML read per domain."""
        for dom in self.connect().listAllDomains(flags):
            try:
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError:
                continue  # vanished meanwhile
            meta = parse_metadata(xml)
            if meta and meta.get("node") == self.node and dom.name().startswith(self.prefix):
                yield dom.UUIDString(), {**meta, "domain": dom.name()}, xml

    def owned(self) -> dict[str, dict[str, str]]:
        """uid -> metadata of every domain whose metadata names this node."""
        return {uid: meta for uid, meta, _ in self._ours(0)}

    def active_owned(self) -> dict[str, tuple[dict[str, str], str]]:
        """uid -> (metadata, live XML) of this node's domains that have a QEMU process (running,
        paused, crashed and kept...): what a volume's file may be open in. Inactive domains are
        not read at all, so the cost follows the running domains, not all defined ones."""
        return {uid: (meta, xml) for uid, meta, xml in self._ours(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}

    # -- operations ------------------------------------------------------------------------------
    def start(self, xml: str, *, define: bool = True) -> None:
        """Start a domain from `xml` and keep it defined (persistent) with the same configuration.

        `createXML` starts it (also over an inactive persistent domain of the same UUID, as the
        new live configuration) in one call, like `virsh create`; `defineXML` then makes that
        configuration the persistent one — here, or with `define=False` by the caller's later
        `define(xml)`, off the start's critical path. Should the handler die in between,
        `ensure_persistent` finishes the job when it adopts the domain. It runs on a spare
        connection: under load a start takes seconds."""
        with self._spare() as conn:
            conn.createXML(xml, 0)
            if define:
                conn.defineXML(xml)

    def define(self, xml: str) -> None:
        """Make `xml` the persistent configuration of its domain (see `start`)."""
        self.connect().defineXML(xml)

    def ensure_persistent(self, uid: str) -> None:
        dom = self.lookup(uid)
        if dom is not None and not dom.isPersistent():
            self.connect().defineXML(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))

    def shutdown(self, uid: str) -> None:
        """Press the ACPI power button (the guest decides how to power off)."""
        dom = self.lookup(uid)
        if dom is not None and dom.isActive():
            dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)

    def destroy(self, uid: str) -> None:
        """Power the domain off: SIGTERM to QEMU first (it may take seconds: a spare connection)."""
        with self._spare() as conn:
            dom = self.lookup(uid, conn)
            if dom is None:
                return
            try:
                if dom.isActive():
                    dom.destroyFlags(libvirt.VIR_DOMAIN_DESTROY_GRACEFUL)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return
                if dom.isActive():  # graceful destroy timed out: kill
                    dom.destroy()

    def undefine(self, uid: str) -> None:
        dom = self.lookup(uid)
        if dom is None:
            return
        if dom.isActive():
            dom.destroy()
        flags = libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise

    def block_resize(self, uid: str, path: str, size: int) -> bool:
        """Grow the disk backed by `path` of a running domain; False when it is not running."""
        dom = self.lookup(uid)
        if dom is None or not dom.isActive():
            return False
        dom.blockResize(path, size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        return True

    def guest_os_info(self, uid: str) -> dict[str, str]:
        """The guest agent's OS information (empty when the agent does not answer)."""
        dom = self.lookup(uid)
        if dom is None:
            return {}
        try:
            info = dom.guestInfo(libvirt.VIR_DOMAIN_GUEST_INFO_OS | libvirt.VIR_DOMAIN_GUEST_INFO_HOSTNAME)
        except libvirt.libvirtError:
            return {}
        return {str(k): str(v) for k, v in info.items()}
