"""Real services started by the test setup itself: libvirtd/virtlogd, a bridge with dnsmasq,
and helpers to boot the guest test image (docs/guest-image.md). Fixtures are in
`tests.services.fixtures` and exported to every test by `tests/conftest.py`."""
