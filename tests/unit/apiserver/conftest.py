"""An in-process API (store + registry + service + GC + lifecycle) on a temporary SQLite file,
with a small VirtualMachine-like CRD, for the semantics tests that need no HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.apiserver.builtins import builtin_resources
from controlplane.apiserver.gc import GarbageCollector
from controlplane.apiserver.lifecycle import Lifecycle
from controlplane.apiserver.resources import Registry, ResourceInfo
from controlplane.apiserver.service import ApiService
from controlplane.apiserver.storage import Store

TEST_CRD: dict[str, Any] = yaml.safe_load((Path(__file__).parents[2] / "fixtures" / "widget-crd.yaml").read_text())


@dataclass
class Api:
    store: Store
    registry: Registry
    service: ApiService
    gc: GarbageCollector
    lifecycle: Lifecycle

    def info(self, group: str, version: str, plural: str) -> ResourceInfo:
        info = self.registry.get(group, version, plural)
        assert info is not None, (group, version, plural)
        return info

    @property
    def widgets(self) -> ResourceInfo:
        return self.info("example.dvp.io", "v1", "widgets")

    @property
    def configmaps(self) -> ResourceInfo:
        return self.info("", "v1", "configmaps")

    @property
    def namespaces(self) -> ResourceInfo:
        return self.info("", "v1", "namespaces")

    async def settle(self) -> None:
        """Wait until the background loops have nothing left to do."""
        import asyncio

        for _ in range(200):
            await asyncio.sleep(0.01)
            if self.gc.queue.idle.is_set() and self.lifecycle.queue.idle.is_set():
                await asyncio.sleep(0.02)
                if self.gc.queue.idle.is_set() and self.lifecycle.queue.idle.is_set():
                    return


async def open_api(path: Path) -> Api:
    store = Store(path)
    store.start()
    registry = Registry()
    for info in builtin_resources():
        registry.add(info)
    service = ApiService(store, registry)
    lifecycle = Lifecycle(service)
    lifecycle.load_crds()
    lifecycle.start()
    gc = GarbageCollector(service)
    gc.start()
    api = Api(store, registry, service, gc, lifecycle)
    crd_info = api.info("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    if store.get(crd_info.storage_resource, "/widgets.example.dvp.io") is None:
        import copy

        await service.create(crd_info, "", copy.deepcopy(TEST_CRD))
    for ns in ("default", "other"):
        if store.get("/namespaces", f"/{ns}") is None:
            await service.create(api.namespaces, "", {"metadata": {"name": ns}})
    return api


async def close_api(api: Api) -> None:
    await api.gc.queue.stop()
    await api.lifecycle.queue.stop()
    await api.store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    a = await open_api(tmp_path / "state.db")
    yield a
    await close_api(a)
