"""The two builds every upgrade test shares (cached across sessions by source hash): A, this
tree as it is (0.1.0, one PyInstaller build), and B, A restamped (packaging/onefile.py, seconds)
as 0.2.0 with the `upgrade-test` feature (a storage migration to data version 2 that fills a new
defaulted field, and a failure switch for the rollback test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dist import built_dvp

B_VERSION = "0.2.0"
B_ENV = {"DVP_BUILD_FEATURES": "upgrade-test"}


@pytest.fixture(scope="session")
def dist_a() -> Path:
    return built_dvp()


@pytest.fixture(scope="session")
def dist_b() -> Path:
    return built_dvp(version=B_VERSION, extra_env=B_ENV)
