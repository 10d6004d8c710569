"""API priority and fairness, after kube-apiserver's: a flood of requests from one client (the
controllers creating the objects of a thousand VMs, a node handler resyncing) must not make
everyone else wait behind it.

The server does its work on one event loop: a request's handling up to its datastore write is
one uninterrupted stretch of CPU, and every request whose bytes have arrived waits its turn in
the loop's queue. Without a gate, `kubectl apply` run while the controllers answer a burst waits
behind every controller request that arrived before it (bench/e2e: 30 VMs took 14.7 s to apply).

Each request is classified (kube's default FlowSchemas, in their order) into a priority level
and a flow (the user): `exempt` requests (`system:masters`, health and metrics probes, and the
long-running ones: watches and streams) run at once; the others queue, one FIFO per flow, and
take one of the server's `seats` in turn: round-robin over the levels with requests waiting,
then over the flows of the level. A request gives its seat back when it leaves the CPU: when it
waits for its datastore commit or for a worker thread (`seat.release`), or when it returns. A
level whose queues hold `queue_limit` requests refuses more with 429 and `Retry-After`, as
kube's queues do; clients retry. The metrics are kube's `apiserver_flowcontrol_*` families.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from controlplane.apiserver import bodies, errors, metrics, seat
from controlplane.apiserver.auth import User
from controlplane.common.metrics import REGISTRY
from controlplane.common.request_timing import Handler

EXEMPT_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})
_LABELS = ("flow_schema", "priority_level")
CURRENT_INQUEUE = REGISTRY.gauge(
    "apiserver_flowcontrol_current_inqueue_requests", "Number of requests currently pending in queues.", _LABELS)
CURRENT_EXECUTING = REGISTRY.gauge(
    "apiserver_flowcontrol_current_executing_requests", "Number of requests holding a seat.", _LABELS)
DISPATCHED = REGISTRY.counter(
    "apiserver_flowcontrol_dispatched_requests_total", "Number of requests executed by API Priority and Fairness.",
    _LABELS)
REJECTED = REGISTRY.counter(
    "apiserver_flowcontrol_rejected_requests_total", "Number of requests rejected by API Priority and Fairness.",
    (*_LABELS, "reason"))
WAIT = REGISTRY.histogram(
    "apiserver_flowcontrol_request_wait_duration_seconds", "Time a request spent waiting in its queue.",
    (*_LABELS, "execute"), buckets=(0.0, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0))


@dataclass(frozen=True)
class Flow:
    """Where a request goes: kube's FlowSchema and priority level, and its flow (the user)."""

    schema: str
    level: str
    user: str = ""

    @property
    def exempt(self) -> bool:
        return self.level == "exempt"


def classify(request: web.Request, user: User) -> Flow:
    """kube's default FlowSchemas in their matching order, for this server's identities."""
    groups = set(user.groups)
    _, _, longrunning = metrics.classified(request)  # as the metrics middleware found it
    if "system:masters" in groups:
        return Flow("exempt", "exempt")
    if longrunning or request.path.rstrip("/") in EXEMPT_PATHS or request.headers.get("Upgrade"):
        return Flow("probes" if not longrunning else "long-running", "exempt")
    if "system:nodes" in groups:
        return Flow("system-nodes", "system", user.name)
    if "system:controllers" in groups or user.name in ("system:dvp-controllers", "system:dvcr"):
        return Flow("dvp-controllers", "workload-high", user.name)
    if "system:serviceaccounts" in groups:
        return Flow("service-accounts", "workload-low", user.name)
    return Flow("global-default", "global-default", user.name)


class Rejected(Exception):
    """The level's queues are full."""


class Seat:
    """One of the gate's seats, held by one request; `release` is idempotent."""

    def __init__(self, gate: FairGate, flow: Flow) -> None:
        self.gate = gate
        self.flow = flow
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.gate.leave(self.flow)


_Waiter = tuple[Flow, "asyncio.Future[None]"]


class FairGate:
    """`seats` requests at a time between the loop's queue and their first wait; the others
    queued per level and flow, dispatched round-robin over levels, then over flows."""

    def __init__(self, seats: int, queue_limit: int) -> None:
        self.seats = seats
        self.queue_limit = queue_limit
        self.executing = 0
        self._levels: OrderedDict[str, OrderedDict[str, deque[_Waiter]]] = OrderedDict()
        self._queued: dict[str, int] = {}
        self._dispatch_pending = False

    def queued(self, level: str) -> int:
        return self._queued.get(level, 0)

    async def enter(self, flow: Flow) -> Seat:
        """Wait for a seat. Seats are given out by a callback the loop runs after the requests
        already in its queue, so that every request that has arrived is queued here, in its
        flow, before any of them is let through: none is granted a seat on its way in."""
        if self.queued(flow.level) - max(0, self.seats - self.executing) >= self.queue_limit:  # free seats: not waiting
            REJECTED.inc(flow.schema, flow.level, "queue-full")
            raise Rejected(flow.level)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._levels.setdefault(flow.level, OrderedDict()).setdefault(flow.user, deque()).append((flow, fut))
        self._queued[flow.level] = self.queued(flow.level) + 1
        CURRENT_INQUEUE.inc(flow.schema, flow.level)
        start = time.monotonic()
        if not self._dispatch_pending:
            self._dispatch_pending = True
            loop.call_soon(self._scheduled_dispatch)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.leave(flow)  # granted just as the client went away
            else:
                self._forget(flow, fut)
            WAIT.observe(time.monotonic() - start, flow.schema, flow.level, "false")
            raise
        WAIT.observe(time.monotonic() - start, flow.schema, flow.level, "true")
        return Seat(self, flow)

    def _scheduled_dispatch(self) -> None:
        self._dispatch_pending = False
        self._dispatch()

    def leave(self, flow: Flow) -> None:
        self.executing -= 1
        CURRENT_EXECUTING.dec(flow.schema, flow.level)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.executing < self.seats and self._levels:
            level, flows = next(iter(self._levels.items()))
            user, waiters = next(iter(flows.items()))
            flow, fut = waiters.popleft()
            self._dequeued(flow)
            if waiters:
                flows.move_to_end(user)
            else:
                del flows[user]
            if flows:
                self._levels.move_to_end(level)
            else:
                del self._levels[level]
            if fut.cancelled():
                continue
            self.executing += 1
            CURRENT_EXECUTING.inc(flow.schema, flow.level)
            DISPATCHED.inc(flow.schema, flow.level)
            fut.set_result(None)

    def _forget(self, flow: Flow, fut: asyncio.Future[None]) -> None:
        flows = self._levels.get(flow.level)
        waiters = flows.get(flow.user) if flows is not None else None
        if flows is None or waiters is None:
            return
        try:
            waiters.remove((flow, fut))
        except ValueError:
            return
        self._dequeued(flow)
        if not waiters:
            del flows[flow.user]
        if not flows:
            del self._levels[flow.level]

    def _dequeued(self, flow: Flow) -> None:
        self._queued[flow.level] -= 1
        CURRENT_INQUEUE.dec(flow.schema, flow.level)


def middleware(gate: FairGate) -> Middleware:
    """After authentication (the user decides the flow), before authorization, as in kube."""

    @web.middleware
    async def flowcontrol(request: web.Request, handler: Handler) -> web.StreamResponse:
        flow = classify(request, request["user"])
        if flow.exempt:
            return await handler(request)
        if request.can_read_body:  # a slow sender waits for its own body without a seat (413 past the limit)
            request[bodies.READ_BODY] = await request.read()
        try:
            held = await gate.enter(flow)
        except Rejected:
            raise errors.ApiError(429, "TooManyRequests",
                                  f"too many requests are queued at priority level {flow.level!r}; "
                                  "retry after the time in Retry-After", {"retryAfterSeconds": 1}) from None
        token = seat.CURRENT.set(held)
        try:
            return await handler(request)
        finally:
            held.release()
            seat.CURRENT.reset(token)

    return flowcontrol
