"""`dvp controller` as a process of its own serves its /metrics on the address it is given:
HTTPS with a certificate it is given, bearer tokens checked by the API server (TokenReview),
controller-runtime's names for what its controllers did."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.common import pki
from tests.services.apiserver import REPO, ApiServerProcess, free_port


@pytest.fixture
def no_controller_server(tmp_path: Path) -> Iterator[ApiServerProcess]:
    server = ApiServerProcess(tmp_path / "data", extra_args=["--no-controllers"])
    server.start()
    yield server
    server.kill()


def _get(url: str, ca: Path, token: str) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_standalone_controllers_serve_their_metrics(no_controller_server: ApiServerProcess, tmp_path: Path) -> None:
    server = no_controller_server
    ca = pki.ensure_ca(server.data_dir / "pki")
    pair = pki.ensure_serving_cert(ca, tmp_path / "metrics-pki", "metrics", sans=["127.0.0.1"])
    port = free_port()
    log = (tmp_path / "controller.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "installer.cli.main", "controller", "--kubeconfig", str(server.kubeconfig),
         "--metrics-bind-address", f"127.0.0.1:{port}", "--metrics-tls-cert", str(pair.cert_path),
         "--metrics-tls-key", str(pair.key_path)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        url = f"https://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            try:
                status, text = _get(url, ca.cert_path, server.token)
            except OSError:
                time.sleep(0.3)
                continue
            # controllers start one after another: wait for the first reconcile and the VM controller's queue
            if (re.search(r'^controller_runtime_reconcile_total\{controller="vmclass",result="success"\} [1-9]', text,
                          re.MULTILINE)
                    and re.search(r'^workqueue_depth\{name="vm",controller="vm"\} \d', text, re.MULTILINE)):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"no vmclass reconcile counted or no vm queue; last answer:\n{text[-2000:]}\nlog:\n"
                                 f"{(tmp_path / 'controller.log').read_text()[-3000:]}")
        assert status == 200
        assert _get(url, ca.cert_path, "")[0] == 401
        assert _get(url, ca.cert_path, "wrong-token")[0] == 401
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
    # a stop longer than --stop-timeout (20 s) leaves every thread's stack in the log
    assert code == 0, f"the controllers stopped with {code}; log:\n{(tmp_path / 'controller.log').read_text()[-6000:]}"
