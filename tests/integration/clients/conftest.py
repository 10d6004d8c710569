"""One `dvp server` for each client-conformance module, and kubectl 1.33 next to Debian's 1.20."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.apiserver import KUBECTL, KUBECTL_V33, ApiServerProcess


class Kubectl:
    """One kubectl binary pointed at one server."""

    def __init__(self, server: ApiServerProcess, binary: Path) -> None:
        assert binary.exists(), f"{binary} missing: run `make setup`"
        self.server = server
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home)}

    def run(self, *args: str, check: bool = True, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.binary), *args], env=self.env, capture_output=True, text=True, input=input,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.binary.parent.name} kubectl {' '.join(args)} failed "
                                 f"({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(self.binary), *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    srv = ApiServerProcess(tmp_path_factory.mktemp("clients") / "data")
    srv.start(60)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def k20(server: ApiServerProcess) -> Kubectl:
    return Kubectl(server, KUBECTL)


@pytest.fixture(scope="module")
def k33(server: ApiServerProcess) -> Kubectl:
    return Kubectl(server, KUBECTL_V33)
