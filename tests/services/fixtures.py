"""Session-scoped pytest fixtures for tests that run real VMs (exported by tests/conftest.py).

- `guest_image`, `guest_image_generic`: the cached guest test image (built on first use)
- `libvirt_service`: libvirtd + virtlogd, started or shared (tests/services/libvirtd.py)
- `libvirt_conn`: an open `qemu:///system` connection
- `vm_bridge`: a bridge with dnsmasq for chosen MAC -> IP bindings (tests/services/network.py)
- `guest_launcher`: boots guests on that bridge and destroys them after the test
- `apiserver` (shared), `fresh_apiserver` (per test): a real `dvp server`; `kubectl_path`

Everything expensive is session-scoped so the whole suite pays for it once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from nodeimage.guest import GuestImage, ensure_image
from tests.services.apiserver import KUBECTL, ApiServerProcess
from tests.services.guests import GuestLauncher
from tests.services.libvirtd import LibvirtDaemons, LibvirtService
from tests.services.network import BridgeNetwork, create_network

log = logging.getLogger("tests.services")


class _LogReporter:
    def step(self, description: str) -> None:
        log.info("guest image: %s", description)

    def progress(self, done: int, total: int) -> None:
        pass


def _silence_libvirt(_ctx: object, _err: object) -> None:
    """libvirt's default handler prints every error to stderr; tests get them as exceptions."""


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The guest image with Debian's cloud kernel (virtio devices)."""
    return ensure_image("cloud", reporter=_LogReporter())


@pytest.fixture(scope="session")
def guest_image_generic() -> GuestImage:
    """The guest image with Debian's generic kernel (also SATA/AHCI and e1000/e1000e)."""
    return ensure_image("generic", reporter=_LogReporter())


@pytest.fixture(scope="session")
def libvirt_service() -> Iterator[LibvirtService]:
    libvirt.registerErrorHandler(_silence_libvirt, None)
    daemons = LibvirtDaemons()
    service = daemons.acquire()
    try:
        yield service
    finally:
        daemons.release()


@pytest.fixture(scope="session")
def libvirt_conn(libvirt_service: LibvirtService) -> Iterator[libvirt.virConnect]:
    conn = libvirt_service.connect()
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture(scope="session")
def vm_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeNetwork]:
    net = create_network(tmp_path_factory.mktemp("bridge"))
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture
def guest_launcher(
    libvirt_conn: libvirt.virConnect, vm_bridge: BridgeNetwork, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GuestLauncher]:
    launcher = GuestLauncher(libvirt_conn, tmp_path_factory.mktemp("guests"), network=vm_bridge)
    try:
        yield launcher
    finally:
        launcher.cleanup()


# -- the API server ----------------------------------------------------------------------------

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
