"""The uploader: expiring upload URLs from DVCR, `curl -T FILE URL` for every format and
compression, the chunked resumable form, checksums, status for the image controller."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dvcr.helpers import Api, DiskImage, qemu_virtual_size
from tests.integration.dvcr.test_import import KEYS
from tests.services.dvcr import DvcrProcess

pytestmark = pytest.mark.integration


def new_upload(api: Api, repo: str, **body: Any) -> dict[str, Any]:
    r = api("POST", "/dvcr/v1/uploads", json={"repository": repo, **body})
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    assert doc["phase"] == "WaitingForUpload"
    return doc


def curl_upload(dvcr: DvcrProcess, url: str, path: Path) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(["curl", "-sS", "--cacert", str(dvcr.ca_file), "-T", str(path), "-w", "\n%{http_code}", url],
                         capture_output=True, text=True, timeout=120)
    body, _, code = out.stdout.rpartition("\n")
    return int(code), json.loads(body) if body.strip() else {}


def pulled(dvcr: DvcrProcess, repo: str, tmp_path: Path) -> Any:
    import asyncio

    from controlplane.dvcr.pull import pull_disk

    return asyncio.run(pull_disk(f"{repo}:latest", tmp_path / "disk", connection=dvcr.connection("node")))


@pytest.mark.parametrize("key", KEYS)
def test_curl_upload_of_each_format_and_compression(dvcr: DvcrProcess, api: Api, disk_images: dict[str, DiskImage],
                                                    key: str, tmp_path: Path) -> None:
    image = disk_images[key]
    repo = f"vi/upload/{key.replace('.', '-')}"
    ticket = new_upload(api, repo)
    assert ticket["url"].startswith(f"{dvcr.url}/upload/") and len(ticket["url"].rsplit("/", 1)[1]) >= 40
    code, doc = curl_upload(dvcr, ticket["url"], image.path)
    assert code == 201, doc
    assert doc["phase"] == "Ready" and doc["result"]["format"] == image.format
    assert doc["result"]["compression"] == image.compression and doc["result"]["source"] == "upload"
    status = api("GET", f"/dvcr/v1/uploads/{ticket['id']}").json()
    assert status["phase"] == "Ready" and status["offset"] == image.path.stat().st_size
    assert status["progress"]["phase"] == "done" and status["progress"]["done"] == image.path.stat().st_size
    disk = pulled(dvcr, repo, tmp_path)
    assert disk.path.read_bytes() == image.disk.read_bytes()
    assert disk.virtual_size == image.virtual_size == qemu_virtual_size(disk.path, image.format)
    code, doc = curl_upload(dvcr, ticket["url"], image.path)
    assert code == 409, "a finished upload URL takes no more data"


def test_chunked_resumable_upload(dvcr: DvcrProcess, api: Api, disk_images: dict[str, DiskImage],
                                  tmp_path: Path) -> None:
    image = disk_images["qcow2.gz"]
    data = image.path.read_bytes()
    total = len(data)
    ticket = new_upload(api, "vi/upload/chunked")
    path = "/upload/" + ticket["url"].rsplit("/", 1)[1]
    anon = Api(dvcr.url, dvcr.ca_file, None)  # the URL is the credential

    def patch(start: int, end: int) -> Any:
        return anon("PATCH", path, data=data[start:end], headers={"Content-Range": f"bytes {start}-{end - 1}/{total}"})

    third = total // 3
    r = patch(0, third)
    assert r.status_code == 204 and r.headers["Upload-Offset"] == str(third)
    r = patch(2 * third, total)
    assert r.status_code == 416 and r.headers["Upload-Offset"] == str(third), "out of order: tells where to resume"
    # a chunk cut off in the middle: the bytes that arrived count, the client asks and resumes
    _cut_off_chunk(dvcr, path, data, third, 2 * third, total)
    offset = int(anon("HEAD", path).headers["Upload-Offset"])
    assert third <= offset <= 2 * third
    assert anon("GET", path).json()["phase"] == "Uploading"
    r = patch(offset, total)
    assert r.status_code == 201, r.text
    assert r.json()["phase"] == "Ready" and r.json()["result"]["compression"] == "gzip"
    assert pulled(dvcr, "vi/upload/chunked", tmp_path).path.read_bytes() == image.disk.read_bytes()


def _cut_off_chunk(dvcr: DvcrProcess, path: str, data: bytes, start: int, end: int, total: int) -> None:
    import socket
    import ssl

    host, port = dvcr.registry.split(":")
    ctx = ssl.create_default_context(cafile=str(dvcr.ca_file))
    with socket.create_connection((host, int(port))) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall((f"PATCH {path} HTTP/1.1\r\nHost: {dvcr.registry}\r\nContent-Range: bytes {start}-{end - 1}/{total}"
                   f"\r\nContent-Length: {end - start}\r\n\r\n").encode())
        s.sendall(data[start:start + (end - start) // 2])
        time.sleep(0.3)
    time.sleep(0.3)


def test_upload_checksum_mismatch_fails_and_the_url_can_be_retried(dvcr: DvcrProcess, api: Api,
                                                                   disk_images: dict[str, DiskImage]) -> None:
    import hashlib

    good, wrong = disk_images["raw.xz"], disk_images["raw.gz"]
    ticket = new_upload(api, "vi/upload/checked",
                        checksums={"sha256": hashlib.sha256(good.path.read_bytes()).hexdigest()})
    code, doc = curl_upload(dvcr, ticket["url"], wrong.path)
    assert code == 422 and doc["phase"] == "Failed" and doc["error"]["reason"] == "ChecksumMismatch"
    assert api("GET", "/v2/vi/upload/checked/manifests/latest").status_code == 404
    assert api("GET", f"/dvcr/v1/uploads/{ticket['id']}").json()["phase"] == "Failed"
    code, doc = curl_upload(dvcr, ticket["url"], good.path)
    assert code == 201 and doc["phase"] == "Ready"


def test_unknown_format_upload_fails_clearly(dvcr: DvcrProcess, api: Api, tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("just some notes, not a disk\n" * 100)
    code, doc = curl_upload(dvcr, new_upload(api, "vi/upload/text")["url"], f)
    assert code == 422 and doc["error"]["reason"] == "UnsupportedFormat" and "text" in doc["error"]["message"]


def test_upload_urls_expire_and_are_unguessable(dvcr: DvcrProcess, api: Api, disk_images: dict[str, DiskImage]) -> None:
    ticket = new_upload(api, "vi/upload/expiring", ttlSeconds=1)
    time.sleep(1.2)
    code, _ = curl_upload(dvcr, ticket["url"], disk_images["raw"].path)
    assert code == 404
    assert api("GET", f"/dvcr/v1/uploads/{ticket['id']}").json()["phase"] == "Expired"
    code, _ = curl_upload(dvcr, f"{dvcr.url}/upload/guessed-token", disk_images["raw"].path)
    assert code == 404


def test_upload_api_needs_push_credentials(dvcr: DvcrProcess) -> None:
    node = Api(dvcr.url, dvcr.ca_file, dvcr.creds("node"))
    assert node("POST", "/dvcr/v1/uploads", json={"repository": "vi/x/y"}).status_code == 403
    anon = Api(dvcr.url, dvcr.ca_file, None)
    assert anon("POST", "/dvcr/v1/uploads", json={"repository": "vi/x/y"}).status_code == 401


def test_cli_issues_an_upload_url(dvcr: DvcrProcess, disk_images: dict[str, DiskImage]) -> None:
    doc = json.loads(dvcr.dvp("upload-url", "cvi/cli-upload", "-o", "json", "--ttl", "600").stdout)
    assert doc["repository"] == "cvi/cli-upload" and doc["tag"] == "latest"
    code, result = curl_upload(dvcr, doc["url"], disk_images["iso.xz"].path)
    assert code == 201 and result["result"]["format"] == "iso"


def test_a_whole_upload_after_a_cut_off_one_starts_over_and_no_log_shows_the_url(
        dvcr: DvcrProcess, api: Api, disk_images: dict[str, DiskImage], tmp_path: Path) -> None:
    """`curl -T` again after a transfer that broke: the new PUT is the whole image with its own
    length (it used to be taken as the rest of the broken one, 204, and wait for bytes never sent);
    and the broken transfer's log line names the URL by its token's fingerprint, not the token,
    which is the only credential the URL's holder needs."""
    image = disk_images["qcow2"]
    data = image.path.read_bytes()
    ticket = new_upload(api, "vi/upload/again")
    token = ticket["url"].rsplit("/", 1)[1]
    _cut_off_chunk(dvcr, f"/upload/{token}", data + b"\0" * len(data), 0, 2 * len(data), 2 * len(data))
    code, doc = curl_upload(dvcr, ticket["url"], image.path)
    assert code == 201 and doc["phase"] == "Ready", doc
    assert pulled(dvcr, "vi/upload/again", tmp_path).path.read_bytes() == image.disk.read_bytes()
    log = dvcr.log_path.read_text()
    assert token not in log and token[:16] not in log
