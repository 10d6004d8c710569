"""The `upgrade-test` build feature: what makes a test build a real "version B" for the
upgrade's acceptance tests and `bench/upgrade`. Compiled in only when the binary is built with
DVP_BUILD_FEATURES=upgrade-test (see `controlplane.common.version`); ordinary builds carry none
of it.

With the feature, the build:
- adds a defaulted field `spec.upgradeTestLevel` (default "B") to the VirtualMachineClass CRD,
  and a storage migration to data version 2 that fills it into every stored class, as a real
  release that adds a defaulted field would;
- honours a failure switch for rollback tests: when `/etc/dvp/upgrade-test-fail` (a host file
  written by the test) names `server`, the API server answers /readyz with 503; when it names
  `agent`, `dvp agent` exits at start. Builds without the feature never read the file.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.common.version import has_feature

FEATURE = "upgrade-test"
FAIL_FILE = Path("/etc/dvp/upgrade-test-fail")
FIELD = "upgradeTestLevel"
DEFAULT = "B"
CLASSES = "virtualization.deckhouse.io/virtualmachineclasses"


def enabled() -> bool:
    return has_feature(FEATURE)


def _fill(obj: dict[str, Any]) -> bool:
    spec = obj.setdefault("spec", {})
    if FIELD in spec:
        return False
    spec[FIELD] = DEFAULT
    return True


MigrationSpec = tuple[int, str, tuple[str, ...], Callable[[dict[str, Any]], bool]]


def migrations() -> list[MigrationSpec]:
    """(data version, name, resources, convert) of the test migration, when compiled in."""
    if not enabled():
        return []
    return [(2, "vmclass-upgrade-test-level", (CLASSES,), _fill)]


def adjust_crds(crds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bundled CRDs as this build serves them (the class CRD gains the defaulted field)."""
    if not enabled():
        return crds
    out = []
    for crd in crds:
        if crd["metadata"]["name"] == "virtualmachineclasses.virtualization.deckhouse.io":
            crd = copy.deepcopy(crd)
            for version in crd["spec"]["versions"]:
                props = version["schema"]["openAPIV3Schema"]["properties"]["spec"].setdefault("properties", {})
                props[FIELD] = {"type": "string", "default": DEFAULT,
                                "description": "Test-only field of upgrade-test builds."}
        out.append(crd)
    return out


def fails(component: str) -> bool:
    """True when the failure switch names `component` (only in upgrade-test builds)."""
    if not enabled():
        return False
    try:
        return component in FAIL_FILE.read_text().split()
    except OSError:
        return False
