"""DVCR against the bad inputs of issue 16: deletes for the admin only, Content-Range checked
before a byte is written, upload API fields refused with a 400 naming them (the ticket still
usable), and a flood of wrong passwords that costs a legitimate pull nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.integration.dvcr.helpers import Api
from tests.services.dvcr import DvcrProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_dvcr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DvcrProcess]:
    """A DVCR of this module's own: the flood test throttles its source address."""
    server = DvcrProcess(tmp_path_factory.mktemp("dvcr-limits") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pusher(own_dvcr: DvcrProcess) -> Api:
    return Api(own_dvcr.url, own_dvcr.ca_file, own_dvcr.creds("importer"))


@pytest.fixture(scope="module")
def admin(own_dvcr: DvcrProcess) -> Api:
    return Api(own_dvcr.url, own_dvcr.ca_file, own_dvcr.creds("admin"))


def test_only_the_admin_deletes_tags_manifests_and_blobs(pusher: Api, admin: Api) -> None:
    digest, _ = pusher.push_image("limits/del", "v1", [b"layer to keep"])
    layer = pusher.push_blob("limits/del", b"loose blob")
    for path in ("/v2/limits/del/manifests/v1", f"/v2/limits/del/manifests/{digest}", f"/v2/limits/del/blobs/{layer}"):
        r = pusher("DELETE", path)
        assert r.status_code == 403 and Api.error_code(r) == "DENIED", (path, r.text)
    assert pusher("GET", "/v2/limits/del/manifests/v1").status_code == 200
    assert admin("DELETE", "/v2/limits/del/manifests/v1").status_code == 202
    assert admin("DELETE", f"/v2/limits/del/blobs/{layer}").status_code == 202
    start = pusher("POST", "/v2/limits/del/blobs/uploads/")
    assert pusher("DELETE", start.headers["Location"]).status_code == 204, "a pusher cancels its own upload"


def _upload_size(api: Api, location: str) -> int:
    r = api("GET", location)
    assert r.status_code == 204, r.text
    return int(r.headers["Range"].split("-")[1]) + 1 if r.headers["Range"] != "0-0" else 0


def test_content_range_mismatch_writes_nothing(pusher: Api) -> None:
    loc = pusher("POST", "/v2/limits/range/blobs/uploads/").headers["Location"]
    r = pusher("PATCH", loc, data=b"0123456789", headers={"Content-Range": "0-9"})
    assert r.status_code == 202
    for header, body in (("10-14", b"abcdefghij"), ("10-29", b"abc"), ("15-24", b"abcdefghij")):
        r = pusher("PATCH", loc, data=body, headers={"Content-Range": header})
        assert r.status_code == 416, (header, r.text)
        assert _upload_size(pusher, loc) == 10, f"{header}: bytes were appended"

    def longer() -> Iterator[bytes]:  # chunked: no Content-Length to check up front
        yield b"abcde"
        time.sleep(0.1)
        yield b"fghijklmnop"

    r = pusher("PATCH", loc, data=longer(), headers={"Content-Range": "10-14"})
    assert r.status_code == 416
    assert _upload_size(pusher, loc) <= 15, "nothing past the announced range is written"


@pytest.mark.parametrize(("body", "field"), [
    ({"ttlSeconds": 1e20}, "ttlSeconds"),
    ({"ttlSeconds": -5}, "ttlSeconds"),
    ({"ttlSeconds": "soon"}, "ttlSeconds"),
    ({"checksums": "zzz"}, "checksums"),
    ({"checksums": {"sha256": "zzz"}}, "checksums.sha256"),
    ({"checksums": {"md5": 5}}, "checksums.md5"),
    ({"tag": 7}, "tag"),
    ({"repository": 5}, "repository"),
], ids=["ttl-huge", "ttl-negative", "ttl-string", "checksums-string", "checksum-bad-hex", "checksum-int", "tag-int",
        "repository-int"])
def test_upload_api_fields_are_400_naming_the_field(pusher: Api, body: dict[str, object], field: str) -> None:
    r = pusher("POST", "/dvcr/v1/uploads", json={"repository": "vi/limits/x", **body})
    assert r.status_code == 400, r.text
    assert field in r.json()["errors"][0]["message"]
    assert r.json()["errors"][0]["detail"] == {"field": field}


def test_bad_upload_offset_is_400_and_the_ticket_still_works(pusher: Api, own_dvcr: DvcrProcess) -> None:
    ticket = pusher("POST", "/dvcr/v1/uploads", json={"repository": "vi/limits/offset"}).json()
    s = requests.Session()
    s.trust_env = False
    r = s.patch(ticket["url"], data=b"abc", headers={"Upload-Offset": "abc"}, verify=str(own_dvcr.ca_file), timeout=30)
    assert r.status_code == 400 and "Upload-Offset" in r.json()["error"], r.text
    head = s.head(ticket["url"], verify=str(own_dvcr.ca_file), timeout=30)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "0"
    status = pusher("GET", f"/dvcr/v1/uploads/{ticket['id']}")
    assert status.status_code == 200 and status.json()["phase"] == "WaitingForUpload"


def test_wrong_password_flood_is_throttled_and_costs_a_pull_nothing(own_dvcr: DvcrProcess, pusher: Api) -> None:
    blob = pusher.push_blob("limits/flood", b"x" * (3 * 1024 * 1024))
    node = Api(own_dvcr.url, own_dvcr.ca_file, own_dvcr.creds("node"))
    path = f"/v2/limits/flood/blobs/{blob}"

    def pull() -> float:
        start = time.monotonic()
        r = node("GET", path)
        assert r.status_code == 200 and len(r.content) == 3 * 1024 * 1024
        return time.monotonic() - start

    quiet = sorted(pull() for _ in range(5))[2]
    stop = threading.Event()
    codes: list[int] = []
    user = own_dvcr.creds("importer")[0]

    def flood(i: int) -> None:
        n = 0
        while not stop.is_set():  # distinct wrong passwords, as fast as 8 clients get answers
            n += 1
            codes.append(Api(own_dvcr.url, own_dvcr.ca_file, (user, f"wrong-{i}-{n}"))("GET", "/v2/").status_code)
            time.sleep(0.1)

    with ThreadPoolExecutor(8) as pool:
        for i in range(8):
            pool.submit(flood, i)
        time.sleep(2.0)
        loud = sorted(pull() for _ in range(5))[2]
        stop.set()
    assert 429 in codes and set(codes) <= {401, 429}, (len(codes), set(codes))
    assert codes.count(401) <= 12, "after the burst, a source's unchecked attempts are refused without bcrypt"
    assert loud < max(quiet * 3, quiet + 0.2), f"pull {quiet * 1000:.0f} ms quiet, {loud * 1000:.0f} ms in the flood"
    answers = [Api(own_dvcr.url, own_dvcr.ca_file, (user, f"again-{n}"))("GET", "/v2/") for n in range(12)]
    refused = [r for r in answers if r.status_code == 429]
    assert refused and int(refused[0].headers["Retry-After"]) >= 1
    assert Api.error_code(refused[0]) == "TOOMANYREQUESTS"
    assert pusher("GET", "/v2/").status_code == 200, "verified credentials are still accepted from that address"

