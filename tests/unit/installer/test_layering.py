"""The installer never imports the control plane's internals: only `controlplane.common.version`
(the product version) and, for `dvp upgrade`'s preflight and health checks, the shared API client
(`controlplane.common.kube.client`/`quick`) and the version reading of a running platform
(`controlplane.common.clusterversions`) are allowed, and for `dvp upgrade --reboot` the drain
`dvp node drain` runs too (`controlplane.common.drain`)."""

from __future__ import annotations

import ast
from pathlib import Path

INSTALLER = Path(__file__).resolve().parents[3] / "installer"
ALLOWED = {"controlplane.common.version", "controlplane.common.kube.client", "controlplane.common.kube.quick",
           "controlplane.common.clusterversions", "controlplane.common.drain"}


def test_installer_imports_only_the_version_from_controlplane() -> None:
    offenders = []
    for path in INSTALLER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(INSTALLER.parent)}: {n}" for n in names
                          if n.split(".")[0] == "controlplane" and n not in ALLOWED]
    assert offenders == []
