"""Fixtures shared by all tests. Real-service fixtures live in tests/services/."""

from tests.services.fixtures import (  # noqa: F401
    guest_image,
    guest_image_generic,
    guest_launcher,
    libvirt_conn,
    libvirt_service,
    vm_bridge,
)
