"""A full disk under `dvp server` (its data directory on a small tmpfs, filled by a file):
writes are refused with 507 and a message saying so — the datastore's and DVCR's — while reads
and `/readyz` go on; no partial blob becomes visible; once the file is removed writes succeed
again without a restart; and after a restart every acknowledged write is there and the
datastore passes SQLite's integrity check."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def create(server: ApiServerProcess, name: str, size: int) -> tuple[int, dict[str, object]]:
    body = {"metadata": {"name": name}, "data": {"blob": "x" * size}}
    code, out = server.raw("POST", CONFIGMAPS, json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return code, json.loads(out) if out.startswith(b"{") else {}


def fill(path: Path) -> None:
    """Write zeros until the file system has no room left."""
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M"], capture_output=True, check=False)
    assert os.statvfs(path.parent).f_bavail == 0


def start_upload(session: requests.Session, dvcr: dict[str, str]) -> requests.Response:
    return session.post(f"{dvcr['url']}/v2/cvi/full-disk/blobs/uploads/", timeout=30)


def push_blob(session: requests.Session, dvcr: dict[str, str], data: bytes,
              started: requests.Response | None = None) -> tuple[int, str]:
    """A blob upload (POST, then PUT of the data with its digest): the status of the PUT."""
    start = started or start_upload(session, dvcr)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    url = location if location.startswith("http") else dvcr["url"] + location
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    done = session.put(url, params={"digest": digest}, data=data, timeout=60,
                       headers={"Content-Type": "application/octet-stream"})
    return done.status_code, done.text


def test_a_full_disk_refuses_writes_clearly_loses_nothing_and_recovers(small_disk: Path) -> None:
    server = ApiServerProcess(small_disk)
    server.start(60)
    try:
        server.wait_ready()
        acked = []
        for i in range(5):
            code, _ = create(server, f"before-{i}", 1000)
            assert code == 201
            acked.append(f"before-{i}")
        dvcr = json.loads(server.dvcr_info.read_text())
        session = requests.Session()
        session.trust_env = False
        session.verify = dvcr["ca"]
        session.headers["Authorization"] = f"Bearer {server.token}"
        upload = start_upload(session, dvcr)  # a push under way when the disk fills
        filler = small_disk / "filler"
        fill(filler)

        refused = None
        for i in range(12):  # 700 KB each: the WAL's spare room cannot absorb them all
            code, status = create(server, f"while-full-{i}", 700_000)
            if code == 201:
                acked.append(f"while-full-{i}")
                continue
            refused = (code, status)
            break
        assert refused is not None, "every write succeeded on a full disk"
        code, status = refused
        assert code == 507, (code, status)
        assert "disk is full" in str(status.get("message")) and status.get("reason") == "InsufficientStorage"
        # reads and readiness go on
        t0 = time.monotonic()
        ready, _ = server.readyz()
        assert ready == 200 and time.monotonic() - t0 < 1.0
        assert server.raw("GET", f"{CONFIGMAPS}/before-0")[0] == 200
        # DVCR: the push under way fails, no partial blob is visible, its bytes are dropped (their room freed)
        blob = os.urandom(4 << 20)
        code, text = push_blob(session, dvcr, blob, upload)
        assert code == 507 and "storage is full" in text, (code, text)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        assert session.head(f"{dvcr['url']}/v2/cvi/full-disk/blobs/{digest}", timeout=30).status_code == 404
        left = [p for p in (small_disk / "dvcr").rglob("*") if p.is_file() and "upload" in str(p)]
        assert left == [], left

        # room again: writes succeed without a restart
        filler.unlink()
        code, _ = create(server, "after", 1000)
        assert code == 201
        acked.append("after")
        code, text = push_blob(session, dvcr, blob)
        assert code == 201, text
    finally:
        server.stop()
    with sqlite3.connect(small_disk / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    server.start(60)
    try:
        names = {i["metadata"]["name"] for i in json.loads(server.raw("GET", CONFIGMAPS)[1])["items"]}
        assert set(acked) <= names, set(acked) - names
    finally:
        server.stop()
