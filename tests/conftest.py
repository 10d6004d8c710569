"""Shared fixtures: real services started and stopped by the tests themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.apiserver import KUBECTL, ApiServerProcess


@pytest.fixture(scope="session")
def kubectl_path() -> Path:
    assert KUBECTL.exists(), f"{KUBECTL} missing: run `make setup` (it unpacks Debian's kubernetes-client there)"
    return KUBECTL


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory, kubectl_path: Path) -> Iterator[ApiServerProcess]:
    """One `dvp server` shared by the tests that don't restart it."""
    server = ApiServerProcess(tmp_path_factory.mktemp("apiserver") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_apiserver(tmp_path: Path, kubectl_path: Path) -> Iterator[ApiServerProcess]:
    """A `dvp server` of the test's own, for tests that kill or restart it."""
    server = ApiServerProcess(tmp_path / "data")
    server.start()
    yield server
    server.kill()
