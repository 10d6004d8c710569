"""Long lists through a real `dvp server` with kubectl 1.33: a server-side apply that stops
applying 20,000 finalizers of a ConfigMap removes them (found by a scan per item, that took 40 s
of the server), a strategic merge patch adds 20,000 more, and label selectors of 15,000 values and of
2,000 terms pick their objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services.apiserver import ApiServerProcess
from tests.services.kubectl import get, kubectl

pytestmark = pytest.mark.integration

MANY = 20_000


def config_map(name: str, finalizers: list[str]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": name, "namespace": "default", "labels": {"app": name}, "finalizers": finalizers},
        "data": {"k": "v"}})


def finalizers(prefix: str, n: int) -> list[str]:
    return [f"example.com/{prefix}-{i}" for i in range(n)]


def test_an_apply_that_drops_a_long_set_and_a_patch_that_adds_one(apiserver: ApiServerProcess, tmp_path: Path) -> None:
    apply = ("apply", "--server-side", "--field-manager=long", "-f", "-")
    kubectl(apiserver, *apply, input=config_map("long", finalizers("a", MANY)))
    assert len(get(apiserver, "configmap", "long")["metadata"]["finalizers"]) == MANY
    kubectl(apiserver, *apply, input=config_map("long", finalizers("a", 3)))
    assert get(apiserver, "configmap", "long")["metadata"]["finalizers"] == finalizers("a", 3)
    patch = tmp_path / "patch.json"  # longer than one command-line argument may be
    patch.write_text(json.dumps({"metadata": {"finalizers": finalizers("b", MANY)}}))
    kubectl(apiserver, "patch", "configmap", "long", "--type=strategic", "--patch-file", str(patch))
    assert get(apiserver, "configmap", "long")["metadata"]["finalizers"] == finalizers("a", 3) + finalizers("b", MANY)
    kubectl(apiserver, "patch", "configmap", "long", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl(apiserver, "delete", "configmap", "long", "--wait=true")


def test_a_label_selector_of_many_values(apiserver: ApiServerProcess) -> None:
    for name in ("pick-1", "pick-2", "other"):
        kubectl(apiserver, "create", "-f", "-", input=config_map(name, []))
    values = ",".join([f"v{i}" for i in range(15_000)] + ["pick-2"])  # within one argument's 128 KiB
    got = kubectl(apiserver, "get", "configmaps", "-l", f"app in ({values})", "-o", "name").stdout.split()
    assert got == ["configmap/pick-2"]
    unequal = ",".join(f"app!=v{i}" for i in range(2_000))
    got = kubectl(apiserver, "get", "configmaps", "-l", f"app,{unequal},app!=other", "-o", "name").stdout.split()
    assert got == ["configmap/pick-1", "configmap/pick-2"]
