"""GC planning, the write gate (read-only during GC) and authentication, on the in-memory
driver with the real aiohttp app in process."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controlplane.dvcr import gc
from controlplane.dvcr.app import RegistryApp
from controlplane.dvcr.auth import Authenticator, AuthError, hash_password
from controlplane.dvcr.digest import digest_of
from controlplane.dvcr.memdriver import MemoryDriver
from controlplane.dvcr.store import RegistryStore

OCI = "application/vnd.oci.image.manifest.v1+json"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def users(tmp_path: Path) -> tuple[Path, Path]:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("".join(f"{u}:{hash_password(u + '-pw', rounds=4)}\n" for u in ("puller", "pusher", "boss")))
    roles = tmp_path / "users.json"
    roles.write_text(json.dumps({"puller": "pull", "pusher": "push", "boss": "admin"}))
    return htpasswd, roles


@pytest.fixture
async def client(users: tuple[Path, Path]) -> AsyncIterator[tuple[TestClient, RegistryStore]]:
    store = RegistryStore(MemoryDriver())
    app = RegistryApp(store, Authenticator(htpasswd=users[0], roles=users[1])).make()
    async with TestClient(TestServer(app)) as c:
        yield c, store


def image(store: RegistryStore, repo: str, layer: bytes, tag: str | None) -> str:
    config = b"{}"
    for blob in (config, layer):
        store.blobs.link(repo, store.blobs.put(blob))
    doc = {"schemaVersion": 2, "mediaType": OCI,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(digest_of(config)),
                      "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": str(digest_of(layer)),
                       "size": len(layer)}]}
    body = json.dumps(doc).encode()
    ref = tag or str(digest_of(body))
    d, _ = store.repos.put_manifest(repo, ref, body, OCI)
    return str(d)


async def test_writes_are_refused_while_gc_holds_the_gate(client: tuple[TestClient, RegistryStore]) -> None:
    c, store = client
    async with store.gate.exclusive():
        r = await c.post("/v2/x/y/blobs/uploads/", headers=basic("pusher", "pusher-pw"))
        assert r.status == 405
        err = (await r.json())["errors"][0]
        assert err["code"] == "UNSUPPORTED" and "read-only while garbage collection runs" in err["message"]
        assert r.headers["Retry-After"]
        r = await c.get("/v2/_catalog", headers=basic("puller", "puller-pw"))
        assert r.status == 200, "reads go on during GC"
    r = await c.post("/v2/x/y/blobs/uploads/", headers=basic("pusher", "pusher-pw"))
    assert r.status == 202


async def test_gc_waits_for_writes_in_flight() -> None:
    store = RegistryStore(MemoryDriver())
    order: list[str] = []

    async def writer() -> None:
        async with store.gate.write():
            await asyncio.sleep(0.2)
            order.append("write done")

    async def collector() -> None:
        await asyncio.sleep(0.05)
        async with store.gate.exclusive():
            order.append("gc runs")

    await asyncio.gather(writer(), collector())
    assert order == ["write done", "gc runs"]


async def test_roles(client: tuple[TestClient, RegistryStore]) -> None:
    c, _ = client
    assert (await c.get("/v2/", headers=basic("puller", "wrong"))).status == 401
    r = await c.post("/v2/x/y/blobs/uploads/", headers=basic("puller", "puller-pw"))
    assert r.status == 403 and (await r.json())["errors"][0]["code"] == "DENIED"
    assert (await c.get("/v2/", headers=basic("nobody", "x"))).status == 401


def test_gc_plan_marks_through_tags_and_respects_grace() -> None:
    store = RegistryStore(MemoryDriver())
    kept = image(store, "r", b"kept layer", "v1")
    loose = image(store, "r", b"loose layer", None)
    report = gc.plan(store, gc.GcSettings(grace_seconds=0), dry_run=True, now=time.time() + 1)
    assert [m["digest"] for m in report.manifests] == [loose]
    assert {b["digest"] for b in report.blobs} == {loose, str(digest_of(b"loose layer"))}
    assert kept not in {b["digest"] for b in report.blobs}
    young = gc.plan(store, gc.GcSettings(grace_seconds=3600), dry_run=True)
    assert young.manifests == [] and young.blobs == [], "nothing younger than the grace period goes"
    gc.sweep(store, report)
    assert store.blobs.stat(digest_of(b"loose layer")) is None
    assert store.blobs.stat(digest_of(b"kept layer")) is not None
    assert str(store.repos.resolve("r", "v1").digest) == kept


async def test_bearer_without_an_api_server_is_refused(users: tuple[Path, Path]) -> None:
    auth = Authenticator(htpasswd=users[0], roles=users[1])
    with pytest.raises(AuthError, match="not accepted here"):
        await auth.authenticate("Bearer some-token")
    with pytest.raises(AuthError, match="not supported"):
        await auth.authenticate("Digest abc")
    identity = await auth.authenticate(basic("boss", "boss-pw")["Authorization"])
    assert identity is not None and identity.may("admin")
    token = auth.issue(identity, ttl=60)
    assert await auth.authenticate(f"Bearer {token}") == identity


def test_htpasswd_needs_bcrypt(tmp_path: Path) -> None:
    from controlplane.dvcr.auth import read_htpasswd

    f = tmp_path / "htpasswd"
    f.write_text("user:{SHA}abcdef\n")
    with pytest.raises(ValueError, match="htpasswd:1: expected USER:BCRYPT-HASH"):
        read_htpasswd(f)
