"""`dvp agent --check` (controlplane/nodehandler/joincheck.py) against a real HTTPS server with the
platform's kind of CA: the token the server accepts or refuses, and the server's clock (its
`Date` header) against this host's; every problem names the host and the check. The install
runs it on each worker (the lab cluster's tests run it there too: tests/integration/multihost)."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from controlplane.common import pki
from controlplane.common.kubeconfig import write_kubeconfig
from controlplane.nodehandler.joincheck import check_join
from tests.support.tlsserver import tls_server

GOOD = "the-node-token"


class FakeApi:
    """The API server's answers to a join check: its status for the good token, 401 for any
    other, and a `Date` header `clock_offset` seconds off this host's clock."""

    def __init__(self) -> None:
        self.clock_offset = 0.0
        self.status_for_good = 404
        self.url = ""
        self.ca_pem = b""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                ok = self.headers.get("Authorization") == f"Bearer {GOOD}"
                self.send_response_only(api.status_for_good if ok else 401)
                self.send_header("Date", email.utils.formatdate(time.time() + api.clock_offset, usegmt=True))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def kubeconfig(self, path: Path, token: str) -> Path:
        return write_kubeconfig(path, server=self.url, ca_pem=self.ca_pem, token=token, user="system:node:w1")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApi]:
    fake = FakeApi()
    with tls_server(tmp_path, fake.handler()) as (fake.url, fake.ca_pem):
        yield fake


def test_accepted_token_and_agreeing_clock_pass(api: FakeApi, tmp_path: Path) -> None:
    assert check_join(api.kubeconfig(tmp_path / "kc", GOOD), "w1", host="host-w1") == []
    api.status_for_good = 200  # the Node exists already (a second install)
    assert check_join(api.kubeconfig(tmp_path / "kc", GOOD), "w1", host="host-w1") == []


def test_wrong_token_names_host_and_check(api: FakeApi, tmp_path: Path) -> None:
    problems = check_join(api.kubeconfig(tmp_path / "kc", "wrong-one"), "w1", host="host-w1")
    assert [p.check for p in problems] == ["token"]
    assert problems[0].message.startswith(f"host host-w1: join check token: the API server at {api.url} refused "
                                          "the token of system:node:w1 (401 Unauthorized)")
    assert "wrong-one" not in problems[0].message


def test_token_of_another_identity_is_named(api: FakeApi, tmp_path: Path) -> None:
    api.status_for_good = 403
    problems = check_join(api.kubeconfig(tmp_path / "kc", GOOD), "w1", host="host-w1")
    assert [p.check for p in problems] == ["token"] and "403 Forbidden" in problems[0].message


@pytest.mark.parametrize(("offset", "failing"), [(0.0, []), (30.0, []), (-600.0, ["clock"]), (600.0, ["clock"])])
def test_clock_skew_against_the_server(api: FakeApi, tmp_path: Path, offset: float, failing: list[str]) -> None:
    api.clock_offset = offset
    problems = check_join(api.kubeconfig(tmp_path / "kc", GOOD), "w1", host="host-w1")
    assert [p.check for p in problems] == failing
    if failing:
        found = re.match(r"host host-w1: join check clock: this host's clock is ([+-]\d+) s off", problems[0].message)
        assert found is not None, problems[0].message
        assert abs(int(found.group(1)) + offset) <= 2  # the Date header has whole seconds
        assert "expected within ±60 s" in problems[0].message


def test_unreachable_api_names_the_check(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path / "pki")
    kc = write_kubeconfig(tmp_path / "kc", server="https://127.0.0.1:9", ca_pem=ca.cert_pem(), token=GOOD,
                          user="system:node:w1")
    problems = check_join(kc, "w1", host="host-w1", timeout=2)
    assert [p.check for p in problems] == ["api"]
    assert problems[0].message.startswith("host host-w1: join check api: the API server at https://127.0.0.1:9 did not answer")
