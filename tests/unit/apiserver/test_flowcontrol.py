"""API priority and fairness: who goes where, the order seats are given in, the queue limit,
and, through a real aiohttp server, that a client sending its body slowly holds no seat and a
queued user is not served after a controller's whole backlog."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from controlplane.apiserver import errors, flowcontrol, seat
from controlplane.apiserver.auth import User
from controlplane.apiserver.handlers import error_response

ADMIN = User("admin", ("system:masters",))
CONTROLLERS = User("system:dvp-controllers", ("system:controllers",))
NODE = User("system:node:a", ("system:nodes",))
ALICE = User("alice", ("dev",))
BOB = User("bob", ("dev",))
ROBOT = User("system:serviceaccount:ci:robot", ("system:serviceaccounts", "system:serviceaccounts:ci"))


@pytest.mark.parametrize(("user", "path", "level"), [
    (ADMIN, "/api/v1/namespaces/default/configmaps", "exempt"),
    (NODE, "/api/v1/nodes/a/status", "system"),
    (CONTROLLERS, "/apis/virtualization.deckhouse.io/v1alpha2/namespaces/d/virtualmachines", "workload-high"),
    (ROBOT, "/api/v1/namespaces/ci/configmaps", "workload-low"),
    (ALICE, "/api/v1/namespaces/default/configmaps", "global-default"),
    (ALICE, "/api/v1/namespaces/default/configmaps?watch=true", "exempt"),
    (ALICE, "/readyz", "exempt"),
])
def test_requests_are_classified_as_kubes_default_flow_schemas(user: User, path: str, level: str) -> None:
    flow = flowcontrol.classify(make_mocked_request("GET", path), user)
    assert flow.level == level
    assert flow.exempt == (level == "exempt")


def _flow(user: User) -> flowcontrol.Flow:
    return flowcontrol.classify(make_mocked_request("POST", "/api/v1/namespaces/d/configmaps"), user)


async def test_seats_go_round_robin_over_levels_then_flows() -> None:
    gate = flowcontrol.FairGate(seats=1, queue_limit=100)
    holder = await gate.enter(_flow(CONTROLLERS))
    granted: list[str] = []

    async def one(user: User, tag: str) -> None:
        s = await gate.enter(_flow(user))
        granted.append(tag)
        s.release()

    tasks = [asyncio.create_task(one(CONTROLLERS, f"c{i}")) for i in range(4)]
    tasks += [asyncio.create_task(one(ALICE, "alice1")), asyncio.create_task(one(ALICE, "alice2")),
              asyncio.create_task(one(BOB, "bob1"))]
    await asyncio.sleep(0)  # all queued behind the holder
    assert gate.queued("workload-high") == 4 and gate.queued("global-default") == 3
    holder.release()
    await asyncio.gather(*tasks)
    # levels alternate; within global-default, alice and bob alternate; each flow stays FIFO
    assert granted == ["c0", "alice1", "c1", "bob1", "c2", "alice2", "c3"]
    assert gate.executing == 0 and gate.queued("workload-high") == gate.queued("global-default") == 0


async def test_requests_that_arrive_together_are_served_in_turn_not_in_arrival_order() -> None:
    gate = flowcontrol.FairGate(seats=1, queue_limit=100)
    granted: list[str] = []

    async def one(user: User, tag: str) -> None:
        s = await gate.enter(_flow(user))
        granted.append(tag)
        s.release()  # at once: a request that never waits after its seat

    tasks = [asyncio.create_task(one(CONTROLLERS, f"c{i}")) for i in range(5)]
    tasks.append(asyncio.create_task(one(ALICE, "alice")))
    await asyncio.gather(*tasks)
    assert granted == ["c0", "alice", "c1", "c2", "c3", "c4"]


async def test_a_full_level_refuses_and_other_levels_still_queue() -> None:
    gate = flowcontrol.FairGate(seats=1, queue_limit=2)
    holder = await gate.enter(_flow(CONTROLLERS))
    waiting = [asyncio.create_task(gate.enter(_flow(CONTROLLERS))) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(flowcontrol.Rejected):
        await gate.enter(_flow(CONTROLLERS))
    user = asyncio.create_task(gate.enter(_flow(ALICE)))
    await asyncio.sleep(0)
    assert gate.queued("global-default") == 1
    holder.release()
    for next_granted in asyncio.as_completed([*waiting, user]):
        (await next_granted).release()
    assert gate.executing == 0


async def test_a_cancelled_waiter_leaves_its_queue_and_its_turn() -> None:
    gate = flowcontrol.FairGate(seats=1, queue_limit=10)
    holder = await gate.enter(_flow(CONTROLLERS))
    gone = asyncio.create_task(gate.enter(_flow(ALICE)))
    stays = asyncio.create_task(gate.enter(_flow(BOB)))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert gate.queued("global-default") == 1
    holder.release()
    s = await stays
    assert gate.executing == 1
    s.release()
    s.release()  # idempotent
    assert gate.executing == 0


async def test_releasing_the_current_seat_lets_the_next_request_run() -> None:
    gate = flowcontrol.FairGate(seats=1, queue_limit=10)
    held = await gate.enter(_flow(CONTROLLERS))
    token = seat.CURRENT.set(held)
    nxt = asyncio.create_task(gate.enter(_flow(ALICE)))
    await asyncio.sleep(0)
    assert not nxt.done()
    seat.release()  # what the datastore does before it waits for its commit
    (await nxt).release()
    seat.CURRENT.reset(token)
    assert gate.executing == 0


USERS = {"admin": ADMIN, "controllers": CONTROLLERS, "alice": ALICE}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["user"] = USERS[request.headers["X-User"]]
    try:
        return await handler(request)
    except errors.ApiError as exc:
        return error_response(exc)


async def _client(gate: flowcontrol.FairGate, handler: Handler) -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=[_authenticate, flowcontrol.middleware(gate)])
    app.router.add_route("*", "/{tail:.*}", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_a_slow_body_holds_no_seat_and_a_user_is_not_served_after_a_backlog() -> None:
    """Decided on the gate's own state, not on timing: the run may be slow (CI runs the unit tests
    next to the integration tests)."""
    gate = flowcontrol.FairGate(seats=1, queue_limit=100)
    order: list[str] = []
    still_queued: dict[str, int] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        tag = request.headers["X-User"] + ":" + (await request.read()).decode()
        order.append(tag)
        still_queued[tag] = gate.queued("workload-high")
        await asyncio.sleep(0.2)  # holds the seat: work that has not reached its commit yet
        return web.json_response({"ok": True})

    client = await _client(gate, handler)
    try:
        async def slow_body() -> AsyncIterator[bytes]:
            await asyncio.sleep(8)
            yield b"late"

        slow = asyncio.create_task(client.post("/x", headers={"X-User": "alice"}, data=slow_body()))
        backlog = [asyncio.create_task(client.post("/x", headers={"X-User": "controllers"}, data=f"c{i}"))
                   for i in range(20)]
        for _ in range(200):  # the backlog queued: one in the seat, the others waiting
            if gate.queued("workload-high") >= 15:
                break
            await asyncio.sleep(0.05)
        assert gate.queued("workload-high") >= 15, order
        user = await client.post("/x", headers={"X-User": "alice"}, data="now")
        assert user.status == 200
        # served while most of the backlog (4 s of it) still waited: not after it, as in arrival order
        assert still_queued["alice:now"] >= 8, (still_queued, order)
        assert not slow.done()  # its body is still on the way, and it held nobody up
        for response in await asyncio.gather(*backlog, slow):
            assert response.status == 200
        assert "alice:late" in order
    finally:
        await client.close()


async def test_a_full_queue_answers_429_with_retry_after_and_exempt_users_pass() -> None:
    gate = flowcontrol.FairGate(seats=1, queue_limit=1)
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers["X-User"] == "controllers":
            await release.wait()
        return web.json_response({"ok": True})

    client = await _client(gate, handler)
    try:
        async with asyncio.timeout(20):
            await _refuse_when_full(client, release)
    finally:
        await client.close()


async def _refuse_when_full(client: TestClient[web.Request, web.Application], release: asyncio.Event) -> None:
    first = asyncio.create_task(client.get("/x", headers={"X-User": "controllers"}))
    await asyncio.sleep(0.1)  # in the seat, waiting for `release`
    second = asyncio.create_task(client.get("/x", headers={"X-User": "controllers"}))
    await asyncio.sleep(0.1)  # queued: the level is full
    refused = await client.get("/x", headers={"X-User": "controllers"})
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    status = json.loads(await refused.text())
    assert status["reason"] == "TooManyRequests" and "workload-high" in status["message"]
    admin = await client.get("/x", headers={"X-User": "admin"})
    assert admin.status == 200
    release.set()
    assert (await first).status == 200 and (await second).status == 200
