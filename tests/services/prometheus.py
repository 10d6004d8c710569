"""A real Prometheus (Debian's `prometheus` package) for the observability acceptance tests:
started on a free loopback port with a generated configuration (HTTPS targets with the
platform's CA and a bearer token read from a file, scraped every second, the shipped alert
rules loaded), queried through its HTTP API, stopped by its PID."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.services.apiserver import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@dataclass
class Target:
    job: str
    address: str
    ca_file: Path
    token: str


class PrometheusProcess:
    def __init__(self, workdir: Path, targets: list[Target], *, rule_files: list[Path] | None = None,
                 interval: str = "1s") -> None:
        self.workdir = workdir
        self.targets = targets
        self.rule_files = rule_files or []
        self.interval = interval
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> Path:
        scrapes = []
        for t in self.targets:
            token_file = self.workdir / f"{t.job}.token"
            token_file.write_text(t.token)
            token_file.chmod(0o600)
            scrapes.append({
                "job_name": t.job, "scheme": "https", "metrics_path": "/metrics",
                "scrape_interval": self.interval, "scrape_timeout": self.interval,
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                "tls_config": {"ca_file": str(t.ca_file)},
                "static_configs": [{"targets": [t.address]}]})
        config = {"global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
                  "rule_files": [str(p) for p in self.rule_files], "scrape_configs": scrapes}
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus did not become ready; log:\n{self.log_path.read_text()[-3000:]}")

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def wait_query(self, expr: str, *, timeout: float = 60, what: str = "") -> list[dict[str, Any]]:
        """The first non-empty answer to `expr` within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                targets = self.api("targets")
                raise AssertionError(f"{what or expr}: no result within {timeout:.0f}s; targets: "
                                     f"{json.dumps(targets['activeTargets'], indent=1)[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
