"""The VM test services are safe when test runs overlap or die: shared libvirtd, reaping.

These run the real daemons: a second "test run" (a child process using the same fixture
code) shares this session's libvirtd and does not stop it on release; domains, bridges and
dnsmasq processes left by a run killed with -9 are removed by the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest

from tests.services.libvirtd import LibvirtService, _running, domain_name_for, reap_orphan_domains
from tests.services.network import BridgeNetwork, create_network
from tests.services.processes import ProcessId

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def _child(code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )


def test_a_second_run_shares_libvirtd_and_leaves_it_running(libvirt_service: LibvirtService) -> None:
    before = _running("libvirtd")
    assert before is not None
    child = _child(
        "import json\n"
        "from tests.services.libvirtd import LibvirtDaemons\n"
        "d = LibvirtDaemons(); s = d.acquire(); c = s.connect()\n"
        "print(json.dumps({'started_here': s.started_here, 'version': c.getLibVersion()}))\n"
        "c.close(); d.release()\n"
    )
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    report = json.loads(out)
    assert report["started_here"] is False, "the second run must reuse the running libvirtd"
    assert report["version"] > 0
    assert _running("libvirtd") == before, "the second run's release must not stop a libvirtd still in use"
    conn = libvirt_service.connect()
    assert conn.getLibVersion() == report["version"]
    conn.close()


def _tiny_domain(name: str) -> str:
    return (
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices><memballoon model='none'/></devices></domain>"
    )


def test_domains_of_dead_runs_are_reaped_and_live_ones_kept(libvirt_conn: libvirt.virConnect) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = libvirt_conn.createXML(_tiny_domain(f"dvpt-{dead.pid}-orphan"), 0)
    mine = libvirt_conn.createXML(_tiny_domain(domain_name_for("alive")), 0)
    try:
        reaped = reap_orphan_domains(libvirt_conn)
        assert orphan.name() in reaped
        assert mine.name() not in reaped
        assert mine.isActive()
        with pytest.raises(libvirt.libvirtError):
            libvirt_conn.lookupByName(orphan.name())
    finally:
        mine.destroy()


def test_bridge_and_dnsmasq_of_a_killed_run_are_removed(tmp_path: Path, vm_bridge: BridgeNetwork) -> None:
    child = _child(
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from tests.services.network import create_network\n"
        f"net = create_network(Path({str(tmp_path)!r}))\n"
        "print(json.dumps({'bridge': net.bridge, 'dnsmasq': net.dnsmasq.to_json()}), flush=True)\n"
        "time.sleep(120)\n"
    )
    assert child.stdout is not None
    left = json.loads(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    dnsmasq = ProcessId.from_json(left["dnsmasq"])
    assert dnsmasq.alive(), "precondition: the killed run left its dnsmasq behind"
    assert subprocess.run(["ip", "link", "show", left["bridge"]], capture_output=True).returncode == 0

    fresh = create_network(tmp_path / "next")  # the next run cleans up while setting up
    try:
        assert not dnsmasq.alive()
        assert subprocess.run(["ip", "link", "show", left["bridge"]], capture_output=True).returncode != 0
        assert fresh.subnet != vm_bridge.subnet, "runs never share a subnet"
        assert subprocess.run(["ip", "link", "show", vm_bridge.bridge], capture_output=True).returncode == 0
    finally:
        fresh.stop()
