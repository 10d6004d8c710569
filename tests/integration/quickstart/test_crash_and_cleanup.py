"""`dvp server` killed with SIGKILL while 20 VMs are being created: after a restart every VM
runs, with exactly one domain each. Then everything is deleted, and nothing is left behind:
no domain, no volume file, no seed, no DVCR blob."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.quickstart.manifests import vd_from_image, vi_http, vm
from tests.integration.quickstart.platform import Platform

pytestmark = pytest.mark.integration

COUNT = 20


def _files(root: Path, name: str | None = None) -> list[Path]:
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file() and (name is None or p.name == name)]


def _progress(platform: Platform) -> str:
    """The disks', VMs' and instances' phases and the server log's last lines: why no domain started."""
    parts = [platform.kubectl("get", kind, "-o", "wide", check=False)
             for kind in ("vi", "vd", "vm", "internalvirtualmachineinstances", "nodes")]
    log = platform.server.log_path.read_text(errors="replace").splitlines()
    return "\n".join([*parts, "server log (last 60 lines):", *log[-60:]])


def _started(platform: Platform) -> int:
    """How many of the test's domains exist: names only (kept by the client), so the count is not held
    up behind domains that are starting, as reading each one's XML would be; the kill follows at once."""
    return sum(1 for dom in platform.conn.listAllDomains()
               if dom.name().startswith(platform.prefix) and "default_crash-" in dom.name())


def test_sigkill_while_creating_twenty_vms(platform: Platform) -> None:
    platform.apply(vi_http("crash-guest", platform.images.url("dvp-guest-cloud.qcow2")))
    platform.phase("vi", "crash-guest", "Ready", timeout=120)
    docs = []
    for i in range(COUNT):
        docs += [vd_from_image(f"crash-{i}", "crash-guest"), vm(f"crash-{i}", f"crash-{i}", memory="128Mi", core_fraction="5%")]
    platform.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    deadline = time.monotonic() + 240
    started_before_kill = 0
    while started_before_kill == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        started_before_kill = _started(platform)
    progress = "" if started_before_kill else _progress(platform)
    platform.server.kill(signal.SIGKILL)
    try:
        assert 0 < started_before_kill < COUNT, (
            f"the kill must land mid-way ({started_before_kill} domains); what the platform shows:\n{progress}")
    finally:
        platform.server.start(timeout=60)  # the next test needs the server, whatever this one found
    for i in range(COUNT):
        platform.phase("vm", f"crash-{i}", "Running", timeout=300)
    names = sorted(d.name() for d in platform.domains())
    assert len(names) == COUNT and len(set(names)) == COUNT, names
    for i in range(COUNT):
        assert sum(1 for n in names if n.endswith(f"default_crash-{i}")) == 1, names


def test_deleting_everything_leaves_nothing(platform: Platform) -> None:
    for kind in ("vmbda", "vmop", "vm", "vd", "vi", "cvi"):
        platform.kubectl("delete", kind, "--all", "--wait=false")
    deadline = time.monotonic() + 240
    left: dict[str, object] = {}
    while time.monotonic() < deadline:
        left = {kind: platform.kubectl("get", kind, "-o", "name").split()
                for kind in ("vm", "vd", "vi", "internalvirtualmachineinstances", "internalvirtualdiskvolumes")}
        if not any(left.values()):
            break
        time.sleep(0.5)
    assert not any(left.values()), left
    assert not platform.domains()
    assert _files(platform.state / "volumes") == []
    assert _files(platform.state / "instances") == []  # seeds, serial logs
    blobs = platform.server.data_dir / "dvcr" / "storage" / "blobs"
    deadline = time.monotonic() + 30
    while _files(blobs, "data") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _files(blobs, "data") == []
