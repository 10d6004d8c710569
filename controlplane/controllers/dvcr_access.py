"""How controllers reach DVCR: its HTTP API (uploads, tag deletion, garbage collection) and
`dvp dvcr import` run as a child process — the importer "job", as DVP runs importer pods.

Controllers never import DVCR's code (components meet only through APIs); a child process
can also be killed or lost without harming the controller, and a restarted controller simply
starts the import again (pushing the same content is idempotent).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from controlplane.controllers.settings import PlatformSettings

log = logging.getLogger(__name__)


def dvcr_command() -> list[str]:
    """How to run `dvp dvcr`: the frozen binary's subcommand, or DVCR's own entry point
    (`python -m controlplane.dvcr`) in this interpreter, never the installer's command line."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "dvcr"]
    return [sys.executable, "-m", "controlplane.dvcr"]


def auth_from_file(path: str, registry: str) -> tuple[str, str]:
    """(user, password) for `registry` from a Docker-style auth file."""
    if not path:
        return "", ""
    auths = json.loads(Path(path).read_text()).get("auths") or {}
    entry: dict[str, str] = auths.get(registry) or next(iter(auths.values()), {})
    user, _, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
    return user, password


class DvcrError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"DVCR answered {status}: {message}")
        self.status = status


class DvcrApi:
    """DVCR's HTTP API with the importer's credentials (basic auth over TLS)."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.url = settings.dvcr_url.rstrip("/")
        self._pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=settings.dvcr_ca_file or None,
                                         timeout=urllib3.Timeout(connect=5, read=60), retries=False)

    def _auth(self, role: str) -> dict[str, str]:
        path = self.settings.dvcr_admin_auth if role == "admin" else self.settings.dvcr_importer_auth
        user, password = auth_from_file(path, self.settings.dvcr_address)
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def request(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                role: str = "importer") -> tuple[int, Any]:
        if not self.url:
            raise DvcrError(0, "no DVCR is configured for the controllers (--dvcr-url)")
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {**self._auth(role), **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        try:
            resp = self._pool.request(method, self.url + path, body=data, headers=hdrs)
        except urllib3.exceptions.HTTPError as exc:
            raise DvcrError(0, f"cannot reach {self.url}: {exc}") from exc
        try:
            doc = json.loads(resp.data) if resp.data else {}
        except ValueError:
            doc = {"raw": resp.data[:200].decode(errors="replace")}
        return resp.status, doc

    def create_upload(self, repository: str, *, ttl: float, checksums: dict[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"repository": repository, "tag": "latest", "ttlSeconds": ttl}
        if checksums:
            body["checksums"] = checksums
        status, doc = self.request("POST", "/dvcr/v1/uploads", body)
        if status != 201:
            raise DvcrError(status, str(doc))
        return dict(doc)

    def upload_status(self, upload_id: str) -> dict[str, Any] | None:
        status, doc = self.request("GET", f"/dvcr/v1/uploads/{upload_id}")
        if status == 404:
            return None
        if status != 200:
            raise DvcrError(status, str(doc))
        return dict(doc)

    def delete_tag(self, repository: str, tag: str = "latest") -> None:
        """Untag an image; its blobs go with the next garbage collection."""
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        resp = self._pool.request("HEAD", f"{self.url}/v2/{repository}/manifests/{tag}",
                                  headers={**self._auth("admin"), **accept})
        if resp.status == 404:
            return
        digest = resp.headers.get("Docker-Content-Digest")
        if not digest:
            raise DvcrError(resp.status, f"no digest for {repository}:{tag}")
        status, doc = self.request("DELETE", f"/v2/{repository}/manifests/{digest}", role="admin")
        if status not in (202, 404):
            raise DvcrError(status, str(doc))

    def collect_garbage(self, *, grace_seconds: float | None = None) -> dict[str, Any]:
        """Run DVCR's GC; `grace_seconds` lowers the age under which blobs are kept (safe only
        when nothing is being pushed)."""
        query = "dryRun=false" + (f"&graceSeconds={grace_seconds:g}" if grace_seconds is not None else "")
        status, doc = self.request("POST", f"/dvcr/v1/gc?{query}", role="admin")
        if status not in (200, 409):
            raise DvcrError(status, str(doc))
        return dict(doc)


@dataclass
class Job:
    """One `dvp dvcr import` child process and what it reported."""

    key: Any
    source: str
    repository: str
    started: float = field(default_factory=time.monotonic)
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    proc: subprocess.Popen[str] | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class Importer:
    """Runs imports as child processes, one per object, and calls `on_change(key)` on progress."""

    def __init__(self, settings: PlatformSettings, on_change: Callable[[Any], None] | None = None) -> None:
        self.settings = settings
        self.on_change = on_change or (lambda _key: None)
        self._jobs: dict[Any, Job] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def busy(self) -> bool:
        """Whether an import is pushing to DVCR right now (its blobs may not be referenced yet)."""
        with self._lock:
            return any(not job.done for job in self._jobs.values())

    def forget(self, key: Any) -> None:
        with self._lock:
            job = self._jobs.pop(key, None)
        if job and job.proc and job.proc.poll() is None:
            job.proc.kill()

    def start(self, key: Any, source: str, repository: str, *, checksums: dict[str, str] | None = None,
              ca_bundle: str | None = None, pull_secret: str | None = None, bearer: str | None = None) -> Job:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.source == source and job.repository == repository:
                return job
            if job is not None:
                self.forget(key)
            job = Job(key, source, repository)
            self._jobs[key] = job
        threading.Thread(target=self._run, args=(job, checksums or {}, ca_bundle, pull_secret, bearer), daemon=True,
                         name=f"import-{repository}").start()
        return job

    def _run(self, job: Job, checksums: dict[str, str], ca_bundle: str | None, pull_secret: str | None,
             bearer: str | None) -> None:
        s = self.settings
        with tempfile.TemporaryDirectory(prefix="dvp-import-") as tmp:
            user, password = auth_from_file(s.dvcr_importer_auth, s.dvcr_address)
            secret = Path(tmp) / "dvcr-password"
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password)
            cmd = [*dvcr_command(), "import", job.source, "--to", f"{job.repository}:latest", "-o", "json",
                   "--progress-json", "--dvcr-url", s.dvcr_url, "--ca", s.dvcr_ca_file, "--user", user,
                   "--password-file", str(secret)]
            for alg, value in checksums.items():
                cmd += ["--checksum", f"{alg}:{value}"]
            if ca_bundle:
                path = Path(tmp) / "ca.pem"
                path.write_text(ca_bundle)
                cmd += ["--ca-bundle", str(path)]
            for option, name, secret_value in (("--pull-secret", "pull-secret.json", pull_secret),
                                               ("--bearer-file", "bearer", bearer)):
                if secret_value:
                    path = Path(tmp) / name
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "w") as f:
                        f.write(secret_value)
                    cmd += [option, str(path)]
            try:
                job.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
            except OSError as exc:
                job.error = f"cannot start the importer: {exc}"
                self.on_change(job.key)
                return
            assert job.proc.stderr is not None and job.proc.stdout is not None
            tail: list[str] = []
            last = 0.0
            for line in job.proc.stderr:
                try:
                    event = json.loads(line)
                except ValueError:
                    tail = (tail + [line.rstrip()])[-5:]
                    continue
                if isinstance(event, dict) and "progress" in event:
                    job.progress = event["progress"]
                    if time.monotonic() - last > 1.0:
                        last = time.monotonic()
                        self.on_change(job.key)
            out = job.proc.stdout.read()
            code = job.proc.wait()
            try:
                doc = json.loads(out) if out.strip() else {}
            except ValueError:
                doc = {}
            if code == 0 and doc:
                job.result = doc
            else:
                err = doc.get("error")
                if isinstance(err, dict):
                    err = err.get("message") or err
                job.error = str(err or doc.get("message") or "; ".join(tail) or f"importer exited {code}")
            self.on_change(job.key)
