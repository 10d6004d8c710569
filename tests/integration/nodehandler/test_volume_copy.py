"""Snapshots at the node handler, on real files, libvirt and QEMU: a volume copied from another
volume (`source.volume`, what a VirtualDiskSnapshot and a disk from a snapshot ask for).

Offline: pattern A written into a volume, snapshotted, pattern B written over the original; a
volume made from the snapshot holds A (and is grown to its requested size) while the original
holds B.
A snapshot (`source.volume.snapshot`) of an unused disk takes its file, the disk becomes an
overlay on it, a volume from the snapshot another overlay; deleting the snapshot makes both
independent with their content, an overlay is exported flat (as DVCR's importer takes it), and
a node handler killed between a snapshot's renames finishes it when it starts again.
In use: a running guest (on an overlay) writes a marker to its
data disk; a copy that requires consistency is refused (the test guest has no qemu-guest-agent,
so its filesystems cannot be frozen), a best-effort copy goes through a libvirt backup of the
running domain, is flat and holds the marker; the snapshot the guest reads through its chain
is deleted while it runs: the guest's disk pulls that data in live (a block-stream job), keeps
it and the guest's own write, and stands alone after.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from controlplane.nodehandler.context import INSTANCES, VOLUMES
from tests.integration.nodehandler.support import NodeEnv, instance, volume, wait_for
from tests.services.apiserver import ApiServerProcess
from tests.services.guests import guest_status

pytestmark = pytest.mark.integration
NS = "snapshots"
MI = 2**20
MARKER = "DVP-SNAP-MARK"


def copy_of(name: str, node: str, source: str, size: str, *, require: bool, snapshot: bool = False) -> dict[str, Any]:
    obj = volume(name, node, size, namespace=NS)
    obj["spec"]["source"] = {"volume": {"name": source, "requireConsistency": require, "snapshot": snapshot}}
    return obj


def qemu_io(path: str, command: str, *, read_only: bool = False) -> subprocess.CompletedProcess[str]:
    args = ["qemu-io", "-f", "qcow2", *(["-r", "-U"] if read_only else []), "-c", command, path]
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


def holds(path: str, pattern: int) -> bool:
    return holds_at(path, pattern, 0)


def holds_at(path: str, pattern: int, offset_mib: int) -> bool:
    out = qemu_io(path, f"read -P {pattern:#x} {offset_mib}M 1M", read_only=True)
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


def export(env: NodeEnv, apiserver: ApiServerProcess, name: str, into: Path) -> Path:
    """The volume's bytes as the importer reads them into DVCR (the node's volume data endpoint)."""
    async def fetch() -> None:
        async with aiohttp.ClientSession() as s, s.get(
                f"https://127.0.0.1:{env.agent.console_port}/v1/namespaces/{NS}/volumes/{name}/data",
                headers={"Authorization": f"Bearer {apiserver.token}"},
                ssl=ssl.create_default_context(cafile=str(apiserver.ca_file))) as r:
            assert r.status == 200, await r.text()
            into.write_bytes(await r.read())
    asyncio.run(fetch())
    return into


def test_a_snapshot_and_a_restore_are_overlays_and_deleting_the_snapshot_keeps_both(
        vols: NodeEnv, apiserver: ApiServerProcess, tmp_path: Path) -> None:
    env = vols
    env.create_volume(volume("data", env.node, "64Mi", namespace=NS))
    data = env.volume_ready("data", NS)["status"]["path"]
    assert qemu_io(data, "write -P 0xaa 0 1M").returncode == 0
    env.create_volume(copy_of("snap-a", env.node, "data", "64Mi", require=True, snapshot=True))
    snap = settled(env, "snap-a")
    assert snap["status"]["phase"] == "Ready", snap["status"]
    assert snap["status"]["consistent"] is True, "no running VM had the disk: the snapshot is consistent"
    snap_path = snap["status"]["path"]
    snap_info = info(snap_path)
    assert snap_info["format"] == "qcow2" and "backing-filename" not in snap_info
    assert info(data)["backing-filename"] == snap_path, "the disk writes to an overlay on the snapshot's file"
    assert holds(snap_path, 0xAA)

    assert qemu_io(data, "write -P 0xbb 0 1M").returncode == 0  # the disk changes after the snapshot
    env.create_volume(copy_of("restored", env.node, "snap-a", "128Mi", require=False))
    restored = settled(env, "restored")["status"]
    assert restored["phase"] == "Ready" and restored["capacityBytes"] == 128 * MI
    assert info(restored["path"])["backing-filename"] == snap_path, "a restore is an overlay too: nothing copied"
    assert holds(restored["path"], 0xAA), "the disk made from the snapshot has the content of snapshot time"
    assert holds(data, 0xBB) and not holds(data, 0xAA)
    assert holds(snap_path, 0xAA), "the snapshot itself is untouched"
    exported = str(export(env, apiserver, "restored", tmp_path / "restored.qcow2"))
    assert "backing-filename" not in info(exported) and holds(exported, 0xAA), "exported flat, as DVCR takes it"

    env.kube.delete(VOLUMES, "snap-a", NS)  # both files above are built on it
    wait_for(lambda: env.kube.get_or_none(VOLUMES, "snap-a", NS) is None, timeout=60, what="snap-a deleted")
    assert not Path(snap_path).exists()
    for path, pattern in ((data, 0xBB), (restored["path"], 0xAA)):
        assert "backing-filename" not in info(path) and holds(path, pattern), path

    # a crash of the node handler between a snapshot's two renames: its restart finishes the snapshot
    env.agent.kill()
    snap_b = env.create_volume(copy_of("snap-b", env.node, "data", "64Mi", require=True, snapshot=True))
    snap_b_path = str(Path(data).with_name(f"snap-b.{snap_b['metadata']['uid']}.qcow2"))
    pending = Path(data).with_name(f".{Path(data).name}.overlay")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-u", "-b", snap_b_path, str(pending),
                    str(64 * MI)], check=True)
    Path(data).rename(snap_b_path)  # the disk's file is the snapshot's; the overlay not in place yet
    env.agent.start()
    assert settled(env, "snap-b")["status"]["phase"] == "Ready"
    assert not pending.exists() and info(data)["backing-filename"] == snap_b_path
    assert holds(data, 0xBB) and holds(snap_b_path, 0xBB)


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
    data_path = env.kube.get(VOLUMES, "vmdata", NS)["status"]["path"]
    assert qemu_io(data_path, "write -P 0xab 4M 1M").returncode == 0  # in what "pre" takes, below the guest's disk
    env.create_volume(copy_of("pre", env.node, "vmdata", "32Mi", require=True, snapshot=True))
    pre = settled(env, "pre")["status"]  # taken while stopped: the guest below runs on an overlay of it
    script = f"#!/bin/sh\nprintf '{MARKER}' > /dev/vdb\nsync\n"
    ip = env.agent.guest_ip(41)
    obj = env.create_instance(instance(
        "vm-snap", env.node, namespace=NS, hostname="vm-snap", grace=5, user_data=script,
        disks=[{"name": "root", "volume": {"name": "root"}}, {"name": "vmdata", "volume": {"name": "vmdata"}}],
        nics=[{"name": "default", "mac": "52:54:00:5e:00:41", "ip": ip}]))
    env.wait_marker(obj["metadata"]["uid"])
    wait_for(lambda: guest_status(ip).get("user-data-rc") == ["0"], timeout=60, what="the guest wrote its marker")

    env.create_volume(copy_of("strict", env.node, "vmdata", "32Mi", require=True, snapshot=True))
    strict = settled(env, "strict")["status"]
    assert strict["phase"] == "Failed", strict
    cond = next(c for c in strict["conditions"] if c["type"] == "Ready")
    assert cond["reason"] == "PotentiallyInconsistent" and "qemu-guest-agent" in strict["message"]
    assert not Path(strict["path"]).exists()

    env.create_volume(copy_of("loose", env.node, "vmdata", "32Mi", require=False, snapshot=True))
    loose = settled(env, "loose")["status"]
    assert loose["phase"] == "Ready", loose
    assert "backing-filename" not in info(loose["path"]), "a running disk's snapshot is a whole copy of its chain"
    assert loose["consistent"] is False, "no freeze: the copy is crash-consistent only, and says so"
    dump = qemu_io(loose["path"], "read -v 0 32", read_only=True).stdout
    assert " ".join(f"{b:02x}" for b in MARKER.encode()) in dump, dump
    assert env.get("vm-snap", NS)["status"]["phase"] == "Running", "the guest ran on through the copy"

    # the running guest reads "pre" through its disk's chain: the disk pulls that data in, live, then "pre" goes
    assert info(data_path)["backing-filename"] == pre["path"]
    env.kube.delete(VOLUMES, "pre", NS)
    wait_for(lambda: env.kube.get_or_none(VOLUMES, "pre", NS) is None, timeout=120, what="pre deleted while the VM runs")
    assert not Path(pre["path"]).exists() and "backing-filename" not in info(data_path), "the disk stands alone"
    assert holds_at(data_path, 0xAB, 4), "the pulled clusters are on disk (QEMU's cache flushed) before pre went"
    assert env.get("vm-snap", NS)["status"]["phase"] == "Running"
    assert guest_status(ip).get("user-data-rc") == ["0"], "the guest answers on: it ran through the pull"
    env.kube.patch(INSTANCES, "vm-snap", {"spec": {"runState": "Stopped"}}, NS)  # QEMU closes the file: all of it
    env.wait_phase("vm-snap", "Stopped", namespace=NS, timeout=60)  # is on disk to read from outside
    assert holds_at(data_path, 0xAB, 4), "what the disk read from pre was pulled into it"
    dump = qemu_io(data_path, "read -v 0 32", read_only=True).stdout
    assert " ".join(f"{b:02x}" for b in MARKER.encode()) in dump, "the guest's own write is still there"
