"""Snapshots at the node handler, on real files, libvirt and QEMU: a volume copied from another
volume (`source.volume`, what a VirtualDiskSnapshot and a disk from a snapshot ask for).

Offline: pattern A written into a volume, copied, pattern B written over the original; a volume
made from the copy holds A (and is grown to its requested size) while the original holds B.
In use: a running guest writes a marker to its data disk; a copy that requires consistency is
refused (the test guest has no qemu-guest-agent, so its filesystems cannot be frozen), a
best-effort copy goes through a libvirt backup of the running domain and holds the marker.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.nodehandler.context import INSTANCES, VOLUMES
from tests.integration.nodehandler.support import NodeEnv, instance, volume, wait_for
from tests.services.guests import guest_status

pytestmark = pytest.mark.integration
NS = "snapshots"
MI = 2**20
MARKER = "DVP-SNAP-MARK"


def copy_of(name: str, node: str, source: str, size: str, *, require: bool) -> dict[str, Any]:
    obj = volume(name, node, size, namespace=NS)
    obj["spec"]["source"] = {"volume": {"name": source, "requireConsistency": require}}
    return obj


def qemu_io(path: str, command: str, *, read_only: bool = False) -> subprocess.CompletedProcess[str]:
    args = ["qemu-io", "-f", "qcow2", *(["-r", "-U"] if read_only else []), "-c", command, path]
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


def holds(path: str, pattern: int) -> bool:
    out = qemu_io(path, f"read -P {pattern:#x} 0 1M", read_only=True)
    return out.returncode == 0 and "Pattern verification failed" not in out.stdout + out.stderr


def info(path: str) -> dict[str, Any]:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True, text=True,
                         check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def settled(env: NodeEnv, name: str, *, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        obj = env.kube.get(VOLUMES, name, NS)
        return obj if (obj.get("status") or {}).get("phase") in ("Ready", "Failed") else None
    return wait_for(done, timeout=timeout, what=f"volume {NS}/{name} Ready or Failed")


@pytest.fixture(scope="module")
def vols(node_env: NodeEnv) -> Iterator[NodeEnv]:
    env = node_env
    if not env.agent.alive():
        env.agent.start()
    env.ensure_namespace(NS)
    yield env
    env.kube.delete_if_exists(INSTANCES, "vm-snap", NS)
    wait_for(lambda: env.kube.get_or_none(INSTANCES, "vm-snap", NS) is None, timeout=60, what="instance gone")
    for obj in env.kube.list(VOLUMES, NS)["items"]:
        env.kube.delete_if_exists(VOLUMES, obj["metadata"]["name"], NS)


def test_a_copy_keeps_the_old_content_and_a_volume_from_it_has_it(vols: NodeEnv) -> None:
    env = vols
    env.create_volume(volume("data", env.node, "64Mi", namespace=NS))
    data = env.volume_ready("data", NS)["status"]["path"]
    assert qemu_io(data, "write -P 0xaa 0 1M").returncode == 0
    env.create_volume(copy_of("snap-a", env.node, "data", "64Mi", require=True))
    snap = settled(env, "snap-a")
    assert snap["status"]["phase"] == "Ready", snap["status"]
    assert snap["status"]["consistent"] is True, "no running VM had the disk: the copy is consistent"
    snap_info = info(snap["status"]["path"])
    assert snap_info["format"] == "qcow2" and "backing-filename" not in snap_info
    assert holds(snap["status"]["path"], 0xAA)

    assert qemu_io(data, "write -P 0xbb 0 1M").returncode == 0  # the disk changes after the snapshot
    env.create_volume(copy_of("restored", env.node, "snap-a", "128Mi", require=False))
    restored = settled(env, "restored")["status"]
    assert restored["phase"] == "Ready" and restored["capacityBytes"] == 128 * MI
    assert holds(restored["path"], 0xAA), "the disk made from the snapshot has the content of snapshot time"
    assert holds(data, 0xBB) and not holds(data, 0xAA)
    assert holds(snap["status"]["path"], 0xAA), "the snapshot itself is untouched"


def test_a_copy_waits_for_its_source(vols: NodeEnv) -> None:
    env = vols
    env.create_volume(copy_of("early", env.node, "later", "8Mi", require=False))
    st = wait_for(lambda: (s := env.kube.get(VOLUMES, "early", NS).get("status") or {}).get("message") and s,
                  timeout=30, what="early waits")
    assert st["phase"] == "Pending" and "later" in st["message"]
    env.create_volume(volume("later", env.node, "8Mi", namespace=NS))
    assert settled(env, "early")["status"]["phase"] == "Ready"


def test_a_running_guests_disk_is_copied_through_a_backup(vols: NodeEnv) -> None:
    env = vols
    env.boot_volume("root", NS)
    env.create_volume(volume("vmdata", env.node, "32Mi", namespace=NS))
    env.volume_ready("vmdata", NS)
    script = f"#!/bin/sh\nprintf '{MARKER}' > /dev/vdb\nsync\n"
    ip = env.agent.guest_ip(41)
    obj = env.create_instance(instance(
        "vm-snap", env.node, namespace=NS, hostname="vm-snap", grace=5, user_data=script,
        disks=[{"name": "root", "volume": {"name": "root"}}, {"name": "vmdata", "volume": {"name": "vmdata"}}],
        nics=[{"name": "default", "mac": "52:54:00:5e:00:41", "ip": ip}]))
    env.wait_marker(obj["metadata"]["uid"])
    wait_for(lambda: guest_status(ip).get("user-data-rc") == ["0"], timeout=60, what="the guest wrote its marker")

    env.create_volume(copy_of("strict", env.node, "vmdata", "32Mi", require=True))
    strict = settled(env, "strict")["status"]
    assert strict["phase"] == "Failed", strict
    cond = next(c for c in strict["conditions"] if c["type"] == "Ready")
    assert cond["reason"] == "PotentiallyInconsistent" and "qemu-guest-agent" in strict["message"]
    assert not Path(strict["path"]).exists()

    env.create_volume(copy_of("loose", env.node, "vmdata", "32Mi", require=False))
    loose = settled(env, "loose")["status"]
    assert loose["phase"] == "Ready", loose
    assert loose["consistent"] is False, "no freeze: the copy is crash-consistent only, and says so"
    dump = qemu_io(loose["path"], "read -v 0 32", read_only=True).stdout
    assert " ".join(f"{b:02x}" for b in MARKER.encode()) in dump, dump
    assert env.get("vm-snap", NS)["status"]["phase"] == "Running", "the guest ran on through the copy"
