"""Fixtures shared by all tests. Real-service fixtures live in tests/services/."""

from tests.services.fixtures import (  # noqa: F401
    apiserver,
    fresh_apiserver,
    guest_image,
    guest_image_generic,
    guest_launcher,
    kubectl_path,
    libvirt_conn,
    libvirt_service,
    vm_bridge,
)
from tests.support.clusterlab import cluster3  # noqa: F401  (1 master + 2 workers on lab hosts, installed once)
