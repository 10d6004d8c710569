"""`kubectl get` asks for a Table: its rows (printer columns per object) are computed in the
worker thread when there are many, so a list of thousands does not stall the event loop."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from controlplane.apiserver import tables
from controlplane.apiserver.handlers import TABLE_ROWS_ON_LOOP, ResourceHandlers
from controlplane.apiserver.watch import WatchHub

from .conftest import Api

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def test_many_rows_are_computed_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    row = tables.row

    def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return row(*args, **kwargs)

    monkeypatch.setattr(tables, "row", recording)
    handlers = ResourceHandlers(api.service, WatchHub(api.store))
    loop_thread = threading.current_thread().name

    async def table(ns: str) -> dict[str, Any]:
        threads.clear()
        request = make_mocked_request("GET", f"/api/v1/namespaces/{ns}/configmaps", headers={"Accept": TABLE})
        response = await handlers.list(request, api.configmaps, ns, TABLE)
        assert response.status == 200 and isinstance(response.body, bytes)
        body: dict[str, Any] = orjson.loads(response.body)
        return body

    for i in range(TABLE_ROWS_ON_LOOP + 1):
        await api.service.create(api.configmaps, "default", {"metadata": {"name": f"c{i}"}, "data": {"k": "v"}})
    await api.service.create(api.configmaps, "other", {"metadata": {"name": "few"}})
    many = await table("default")
    assert len(many["rows"]) == TABLE_ROWS_ON_LOOP + 1 and many["rows"][0]["cells"][:2] == ["c0", 1]
    assert set(threads) and loop_thread not in threads, threads
    few = await table("other")
    assert [r["cells"][0] for r in few["rows"]] == ["few"] and threads == [loop_thread]
