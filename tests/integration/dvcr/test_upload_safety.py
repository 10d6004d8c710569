"""Uploads that go wrong: cut off mid-body, the server killed mid-upload, the same blob
pushed by two clients at once. Nothing half-written may ever become visible."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.dvcr.helpers import Api, sha256
from tests.services.dvcr import DvcrProcess

pytestmark = pytest.mark.integration


def blob_files(storage: Path) -> dict[str, bytes]:
    """Every committed blob: digest -> its bytes (and each must match its own digest)."""
    out = {}
    for data in (storage / "blobs").rglob("data"):
        content = data.read_bytes()
        alg = data.parent.parent.parent.name
        assert hashlib.new(alg, content).hexdigest() == data.parent.name, f"corrupt blob {data}"
        out[f"{alg}:{data.parent.name}"] = content
    return out


def send_partial_patch(dvcr: DvcrProcess, location: str, announced: int, body: bytes) -> None:
    """A PATCH that announces `announced` bytes, sends `body`, and then the connection drops."""
    user, password = dvcr.creds("importer")
    host, port = dvcr.registry.split(":")
    ctx = ssl.create_default_context(cafile=str(dvcr.ca_file))
    with socket.create_connection((host, int(port))) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        s.sendall((f"PATCH {location} HTTP/1.1\r\nHost: {dvcr.registry}\r\nAuthorization: Basic {auth}\r\n"
                   f"Content-Type: application/octet-stream\r\nContent-Length: {announced}\r\n\r\n").encode())
        s.sendall(body)
        time.sleep(0.3)
    time.sleep(0.3)  # let the server notice


def test_cut_off_upload_leaves_nothing_visible_and_can_resume(dvcr: DvcrProcess, api: Api) -> None:
    repo = "safety/cutoff"
    data = os.urandom(2_000_000)
    d = sha256(data)
    location = api("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    send_partial_patch(dvcr, location, len(data), data[:700_000])
    assert api("HEAD", f"/v2/{repo}/blobs/{d}").status_code == 404
    assert d not in blob_files(dvcr.storage)
    held = int(api("GET", location).headers["Range"].split("-")[1]) + 1
    assert 0 < held <= 700_000, "the bytes that arrived are kept for a resume"
    # committing now would be a bad digest: refused, still nothing visible
    r = api("PUT", location, params={"digest": d})
    assert r.status_code == 400 and Api.error_code(r) == "DIGEST_INVALID"
    assert d not in blob_files(dvcr.storage)
    r = api("PATCH", location, data=data[held:], headers={"Content-Range": f"{held}-{len(data) - 1}"})
    assert r.status_code == 202, (r.text, held)
    assert api("PUT", location, params={"digest": d}).status_code == 201
    assert blob_files(dvcr.storage)[d] == data


def test_server_killed_mid_upload_leaves_no_blob(tmp_path: Path) -> None:
    server = DvcrProcess(tmp_path / "data")
    server.start()
    try:
        api = Api(server.url, server.ca_file, server.creds("importer"))
        data = os.urandom(8 << 20)
        d = sha256(data)
        location = api("POST", "/v2/safety/kill/blobs/uploads/").headers["Location"]
        sent = threading.Event()

        def slow_body() -> Iterator[bytes]:
            for i in range(0, len(data), 256 * 1024):
                yield data[i:i + 256 * 1024]
                if i >= 2 << 20:
                    sent.set()
                    time.sleep(0.2)

        def push() -> None:
            with contextlib.suppress(requests.RequestException):
                api("PATCH", location, data=slow_body())

        t = threading.Thread(target=push)
        t.start()
        assert sent.wait(30)
        server.stop(signal.SIGKILL)
        t.join(30)
        assert d not in blob_files(server.storage)
        server.start()
        api = Api(server.url, server.ca_file, server.creds("importer"))
        assert api("HEAD", f"/v2/safety/kill/blobs/{d}").status_code == 404
        r = api("PUT", location, params={"digest": d})
        assert r.status_code == 400 and Api.error_code(r) == "DIGEST_INVALID"
        assert d not in blob_files(server.storage)
    finally:
        server.stop()


def test_same_blob_pushed_by_two_clients_at_once_ends_as_one_valid_blob(dvcr: DvcrProcess) -> None:
    data = os.urandom(6 << 20)
    d = sha256(data)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def client(repo: str) -> None:
        api = Api(dvcr.url, dvcr.ca_file, dvcr.creds("importer"))
        location = api("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
        barrier.wait()
        for i in range(0, len(data), 1 << 20):
            r = api("PATCH", location, data=data[i:i + (1 << 20)],
                    headers={"Content-Range": f"{i}-{min(i + (1 << 20), len(data)) - 1}"})
            assert r.status_code == 202, r.text
            location = r.headers["Location"]
        barrier.wait()  # both commit at the same moment
        results.append(api("PUT", location, params={"digest": d}).status_code)

    threads = [threading.Thread(target=client, args=(f"safety/twin{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [201, 201]
    blobs = blob_files(dvcr.storage)
    assert blobs[d] == data
    assert len([p for p in (dvcr.storage / "blobs").rglob("data") if p.parent.name == d[7:]]) == 1
    assert not list((dvcr.storage / "blobs").rglob("*.tmp")), "no temporary file left next to blobs"
    api = Api(dvcr.url, dvcr.ca_file, dvcr.creds("node"))
    for i in range(2):
        assert api("GET", f"/v2/safety/twin{i}/blobs/{d}").content == data
