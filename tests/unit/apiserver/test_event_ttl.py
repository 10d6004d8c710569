"""Events expire `ttl` after their last write (kube-apiserver's --event-ttl); other kinds stay."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from controlplane.apiserver.errors import ApiError
from controlplane.apiserver.event_ttl import EventExpiry, last_written

from .conftest import Api

TTL = 0.6


def event(name: str, when: dt.datetime | None = None) -> dict[str, Any]:
    stamp = (when or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": name}, "involvedObject": {"kind": "ConfigMap", "name": "c", "namespace": "default"},
            "reason": "Tested", "message": "m", "type": "Normal", "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp}


def present(api: Api, name: str) -> bool:
    try:
        api.service.get(api.info("", "v1", "events"), "default", name)
        return True
    except ApiError as exc:
        assert exc.code == 404
        return False


async def wait_gone(api: Api, name: str, within: float) -> float:
    start = time.monotonic()
    while present(api, name):
        assert time.monotonic() - start < within, f"event {name} still there after {within}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_an_event_is_deleted_ttl_after_its_last_write_and_nothing_else_is(api: Api) -> None:
    expiry = EventExpiry(api.service, TTL)
    expiry.start()
    try:
        events = api.info("", "v1", "events")
        born = time.monotonic()
        await api.service.create(events, "default", event("once"))
        await api.service.create(events, "default", event("bumped"))
        await api.service.create(api.configmaps, "default", {"metadata": {"name": "c"}, "data": {"k": "v"}})
        await asyncio.sleep(TTL * 0.6)
        await api.service.patch(events, "default", "bumped", "application/merge-patch+json", {"count": 2})
        await wait_gone(api, "once", TTL * 2)
        # from before its create: a slow sleep or patch on a busy machine takes nothing off its time
        assert time.monotonic() - born > TTL * 0.9, "expired before its time"
        assert present(api, "bumped"), "the bump gave it ttl more"
        await wait_gone(api, "bumped", TTL * 2)
        assert api.service.get(api.configmaps, "default", "c").obj["data"] == {"k": "v"}
        assert not expiry.due
    finally:
        await expiry.queue.stop()


async def test_events_stored_before_a_start_expire_from_their_last_write(api: Api) -> None:
    events = api.info("", "v1", "events")
    await api.service.create(events, "default", event("written"))
    ahead = event("ahead", dt.datetime.now(dt.UTC) + dt.timedelta(days=365))  # a client's clock is wrong
    await api.service.create(events, "default", ahead)

    def restarted_after(hours: float) -> EventExpiry:
        expiry = EventExpiry(api.service, 3600.0, clock=lambda: time.time() + hours * 3600)
        expiry.start()
        return expiry

    expiry = restarted_after(0.5)
    try:
        assert abs(expiry.due["default/written"] - (time.time() + 3600)) < 5, "an hour after its write"
        assert abs(expiry.due["default/ahead"] - (time.time() + 5400)) < 5, "never later than ttl from now"
        await asyncio.sleep(0.2)
        assert present(api, "written") and present(api, "ahead")
    finally:
        await expiry.queue.stop()
    expiry = restarted_after(2)
    try:
        await wait_gone(api, "written", 2.0)
        assert present(api, "ahead")
    finally:
        await expiry.queue.stop()


def test_last_written_reads_the_latest_time_an_event_names() -> None:
    now = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC).timestamp()
    obj = {"metadata": {"creationTimestamp": "2026-12-07T10:00:00Z"}, "lastTimestamp": "2026-12-07T11:00:00Z",
           "eventTime": "2026-12-07T11:30:00.123456Z", "series": {"lastObservedTime": "2026-12-07T11:45:00.000000Z"}}
    assert last_written(obj, now) == now - 15 * 60
    assert last_written({"lastTimestamp": None, "eventTime": "not a time"}, now) == now
    assert last_written({"lastTimestamp": "2027-01-01T00:00:00Z"}, now) == now
