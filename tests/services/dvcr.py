"""DVCR and its peers as real processes for tests and benchmarks.

- `DvcrProcess`: `dvp dvcr serve` on a free loopback port with its own data directory,
  CA and users (it writes DATA_DIR/dvcr.json and the auth files).
- `DistributionProcess`: CNCF Distribution (Debian `docker-registry`) with TLS and
  htpasswd, as a source registry for imports and as the benchmark's peer.
- `TlsFileServer`: an HTTPS static file server (thread) with its own CA, for HTTP imports,
  with `/redirect/<name>` answering 302 to `/<name>`.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.services.apiserver import REPO, free_port

DOCKER_REGISTRY = Path("/usr/bin/docker-registry")


def _wait_for_line(log: Path, line: str, proc: subprocess.Popen[bytes], timeout: float, before: int = 0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if text.count(line) > before:
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{line!r} not seen; log:\n{log.read_text(errors='replace')[-4000:]}")


class DvcrProcess:
    READY = "dvp dvcr: ready at"

    def __init__(self, data_dir: Path, *, extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args or []
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        before = self.log_path.read_text().count(self.READY) if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "installer.cli.main", "dvcr", "serve", "--data-dir", str(self.data_dir),
                 "--listen", "127.0.0.1:0", *self.extra_args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        _wait_for_line(self.log_path, self.READY, self.proc, timeout, before)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    @property
    def info(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.data_dir / "dvcr.json").read_text())
        return doc

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def registry(self) -> str:
        return str(self.info["registry"])

    @property
    def ca_file(self) -> Path:
        return Path(self.info["ca"])

    @property
    def storage(self) -> Path:
        return self.data_dir / "dvcr" / "storage"

    def authfile(self, who: str) -> Path:
        return Path(self.info["authfiles"][who])

    def creds(self, who: str) -> tuple[str, str]:
        doc = json.loads(self.authfile(who).read_text())
        user, _, password = base64.b64decode(next(iter(doc["auths"].values()))["auth"]).decode().partition(":")
        return user, password

    def connection(self, who: str = "importer") -> Any:
        from controlplane.dvcr.credentials import DvcrConnection

        return DvcrConnection.from_info(self.data_dir / "dvcr.json", user=who)

    def cert_dir(self) -> Path:
        """A folder with the CA as `ca.crt`, the layout skopeo's --cert-dir wants."""
        d = self.data_dir.parent / f"{self.data_dir.name}-certs"
        d.mkdir(exist_ok=True)
        (d / "ca.crt").write_bytes(self.ca_file.read_bytes())
        return d

    def dvp(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`dvp dvcr ARGS --data-dir DATA_DIR` as a subprocess."""
        result = subprocess.run([sys.executable, "-m", "installer.cli.main", "dvcr", *args, "--data-dir",
                                 str(self.data_dir)], capture_output=True, text=True, cwd=REPO, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"dvp dvcr {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


class DistributionProcess:
    """Debian's docker-registry (CNCF Distribution 2.8) over TLS with one htpasswd user."""

    def __init__(self, workdir: Path, *, cert: Path, key: Path, user: str = "dist", password: str = "dist-secret"
                 ) -> None:
        from controlplane.dvcr.auth import hash_password

        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user, self.password = user, password
        (workdir / "htpasswd").write_text(f"{user}:{hash_password(password)}\n")
        (workdir / "config.yml").write_text(json.dumps({
            "version": "0.1", "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{self.port}", "tls": {"certificate": str(cert), "key": str(key)}},
            "auth": {"htpasswd": {"realm": "dist", "path": str(workdir / "htpasswd")}},
        }))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        assert DOCKER_REGISTRY.exists(), "docker-registry missing: run `make setup` (Debian package docker-registry)"
        with (self.workdir / "registry.log").open("ab") as log:
            self.proc = subprocess.Popen([str(DOCKER_REGISTRY), "serve", str(self.workdir / "config.yml")],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not start: {(self.workdir / 'registry.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def pull_secret(self, path: Path) -> Path:
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        path.write_text(json.dumps({"auths": {self.registry: {"auth": auth}}}))
        return path


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path[len("/redirect/"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


class TlsFileServer:
    """Serves `root` over HTTPS on loopback with a certificate from its own CA (`ca_file`)."""

    def __init__(self, root: Path, pki_dir: Path) -> None:
        from controlplane.common import pki

        ca = pki.ensure_ca(pki_dir, common_name="test-web-ca")
        pair = pki.issue_cert(ca, pki_dir, "web", common_name="web", sans=["127.0.0.1", "localhost"])
        self.ca_file = ca.cert_path
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pair.cert_path, pair.key_path)

        def handler(*a: Any, **kw: Any) -> _Handler:
            return _Handler(*a, directory=str(root), **kw)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
