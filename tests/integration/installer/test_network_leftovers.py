"""Network and leftover checks on real hosts whose state the test changes: a port taken, a
route that collides with the pod network, a host name that is invalid or shared, a name that
does not resolve, Kubernetes files and a container runtime process left behind."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from installer.checks.model import PreflightReport
from installer.checks.runner import run_preflight
from tests.integration.installer.conftest import ConfigFactory, Lab, build_config, host

pytestmark = pytest.mark.integration

LISTENER = (
    "import socket,time\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 6443)); s.listen()\n"
    "print('ready', flush=True); time.sleep(3600)\n"
)


@pytest.fixture(scope="module")
def dirty(lab: Lab) -> Iterator[None]:
    """Make the `dirty` host dirty: an API port taken, a containerd running, a route in the
    pod network (its recorded root also holds /etc/kubernetes/admin.conf and /etc/dvp)."""
    h = lab["dirty"]
    h.spawn("python3", "-c", LISTENER, ready_line=b"ready")
    fake = h.dir / "containerd"
    shutil.copy("/bin/sleep", fake)
    h.spawn(str(fake), "3600")
    h.run("ip", "route", "add", "10.111.5.0/24", "dev", "eth0")
    yield


@pytest.fixture(scope="module")
def report(lab: Lab, dirty: None, tmp_path_factory: pytest.TempPathFactory) -> PreflightReport:
    names = ["dirty", "badname", "twin1", "twin2", "plain"]
    config = build_config(
        lab, tmp_path_factory.mktemp("net"), [host(lab[n]) for n in names],
        cluster={"internalNetworkCIDRs": [str(lab.lab.subnet)]},
    )
    return run_preflight(config).report


def test_taken_port_is_named(report: PreflightReport) -> None:
    ports = report.host("dirty").result("network.ports")
    assert ports.verdict == "error"
    assert ports.observed == "in use: 6443 (API server)"
    assert report.host("plain").result("network.ports").verdict == "passed"


def test_route_overlapping_the_pod_network(report: PreflightReport) -> None:
    routes = report.host("dirty").result("network.cidr_routes")
    assert routes.verdict == "error"
    assert routes.observed == "cluster.podSubnetCIDR 10.111.0.0/16 overlaps route 10.111.5.0/24 dev eth0"
    assert report.host("plain").result("network.cidr_routes").verdict == "passed"


def test_invalid_and_unresolvable_host_name(report: PreflightReport) -> None:
    bad = report.host("badname")
    assert bad.result("network.hostname").verdict == "error"
    assert bad.result("network.hostname").observed == "'Bad_Name'"
    assert bad.result("network.hostname_unique").verdict == "blocked"
    assert bad.result("network.resolve_self").observed == "Bad_Name does not resolve"
    assert bad.result("network.resolve_localhost").verdict == "passed"


def test_shared_host_name(report: PreflightReport) -> None:
    for me, other in (("twin1", "twin2"), ("twin2", "twin1")):
        unique = report.host(me).result("network.hostname_unique")
        assert unique.verdict == "error"
        assert unique.observed == f"twin is also the host name of {other}"
    assert report.host("plain").result("network.hostname_unique").verdict == "passed"


def test_internal_network(report: PreflightReport, lab: Lab, make_config: ConfigFactory) -> None:
    ok = report.host("plain").result("network.internal_address")
    assert ok.verdict == "passed"
    assert ok.observed == f"{lab['plain'].address} in {lab.lab.subnet}"
    config = make_config([host(lab["plain"])], cluster={"internalNetworkCIDRs": ["192.168.77.0/24"]})
    wrong = run_preflight(config).report.hosts[0].result("network.internal_address")
    assert wrong.verdict == "error"
    assert f"{lab['plain'].address}/30" in wrong.observed


def test_leftovers_are_refused(report: PreflightReport) -> None:
    d = report.host("dirty")
    assert d.result("leftovers.kubernetes").observed == "found /etc/kubernetes/admin.conf"
    assert d.result("leftovers.container_runtime").observed == "found process containerd"
    assert d.result("leftovers.dvp").observed == "found /etc/dvp"
    for name in ("leftovers.kubernetes", "leftovers.container_runtime", "leftovers.dvp"):
        assert d.result(name).verdict == "error"
        assert d.result(name).fix
        assert report.host("plain").result(name).verdict == "passed"
