"""Real services the tests start and stop themselves (by PID): the API server
(`apiserver.py`), libvirtd/virtlogd, a bridge with dnsmasq, and helpers to boot the guest
test image (docs/guest-image.md). Fixtures are in `tests.services.fixtures` and exported to
every test by `tests/conftest.py`."""
