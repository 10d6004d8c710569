"""The one place the product's version lives.

Every component reports this version (the API server's /version, agents' Node labels,
`dvp --version`); the upgrade compares it across hosts. A build can override it with the
DVP_BUILD_VERSION environment variable at build time only through `build.spec` (a PyInstaller
runtime hook sets `__version__` before any other code runs). `DVP_BUILD_FEATURES` (comma
separated) sets `BUILD_FEATURES` the same way: optional parts of a build, e.g. `upgrade-test`: the
test-only storage migration and failure hooks the upgrade's acceptance tests use for their
"version B" (see `controlplane/apiserver/upgradetest.py`).
"""

from __future__ import annotations

__version__ = "0.1.0"
BUILD_FEATURES: frozenset[str] = frozenset()


def has_feature(name: str) -> bool:
    """True when this build was made with `name` in DVP_BUILD_FEATURES."""
    return name in BUILD_FEATURES
