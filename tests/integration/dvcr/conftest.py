"""Shared, session-scoped real services for the DVCR tests: one standalone DVCR, an HTTPS
file server with its own CA serving disk images, and CNCF Distribution as a source registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.common import pki
from tests.integration.dvcr.helpers import Api, DiskImage, make_disk_images
from tests.services.dvcr import DistributionProcess, DvcrProcess, TlsFileServer


@pytest.fixture(scope="session")
def dvcr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DvcrProcess]:
    server = DvcrProcess(tmp_path_factory.mktemp("dvcr") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api(dvcr: DvcrProcess) -> Api:
    """The registry API as the importer user (push)."""
    return Api(dvcr.url, dvcr.ca_file, dvcr.creds("importer"))


@pytest.fixture(scope="session")
def admin_api(dvcr: DvcrProcess) -> Api:
    """The registry API as the admin (the only role that may delete tags, manifests, blobs)."""
    return Api(dvcr.url, dvcr.ca_file, dvcr.creds("admin"))


@pytest.fixture(scope="session")
def disk_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DiskImage]:
    return make_disk_images(tmp_path_factory.mktemp("images") / "www")


@pytest.fixture(scope="session")
def web(disk_images: dict[str, DiskImage], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFileServer]:
    root = next(iter(disk_images.values())).path.parent
    server = TlsFileServer(root, tmp_path_factory.mktemp("web-pki"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistributionProcess]:
    work = tmp_path_factory.mktemp("distribution")
    ca = pki.ensure_ca(work / "pki", common_name="test-registry-ca")
    pair = pki.issue_cert(ca, work / "pki", "registry", common_name="registry", sans=["127.0.0.1"])
    reg = DistributionProcess(work / "registry", cert=pair.cert_path, key=pair.key_path)
    reg.ca_file = ca.cert_path  # type: ignore[attr-defined]
    reg.start()
    yield reg
    reg.stop()


@pytest.fixture
def fresh_dvcr(tmp_path: Path) -> Iterator[DvcrProcess]:
    """A DVCR of the test's own, with no GC grace period (for exact GC expectations)."""
    server = DvcrProcess(tmp_path / "data", extra_args=["--gc-grace", "0"])
    server.start()
    yield server
    server.stop()
