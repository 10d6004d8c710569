"""kubectl 1.33 run against a test `dvp server` as its admin: what integration tests of the
controllers type, with the failure's stderr in the assertion."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from tests.services.apiserver import KUBECTL_V33, ApiServerProcess


def kubectl(server: ApiServerProcess, *args: str, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL_V33.exists(), f"{KUBECTL_V33} missing: run `make setup`"
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "HOME": str(server.home)}
    out = subprocess.run([str(KUBECTL_V33), *args], env=env, capture_output=True, text=True, input=input, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return out


def get(server: ApiServerProcess, *args: str) -> dict[str, Any]:
    """The object (or list) as JSON; {} when kubectl cannot get it."""
    out = kubectl(server, "get", *args, "-o", "json", check=False)
    result: dict[str, Any] = json.loads(out.stdout) if out.returncode == 0 else {}
    return result
