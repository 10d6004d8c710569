"""One platform per module: booting it (server, DVCR, agent, bridge) costs seconds, VMs cost more."""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from nodeimage.guest import GuestImage
from tests.integration.quickstart.platform import Platform, start_platform
from tests.services.libvirtd import LibvirtService


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, libvirt_service: LibvirtService,
             libvirt_conn: libvirt.virConnect, guest_image: GuestImage, kubectl_path: object) -> Iterator[Platform]:
    yield from start_platform(tmp_path_factory.mktemp("platform"), libvirt_conn, guest_image.directory)
