"""Volumes and images through the node handler, seen from inside a real guest.

One VM boots from a volume copied from a copy of the guest image; the copy and the node's
cache entry are deleted before the VM starts, so the boot proves the volume stands alone. It
also has an empty 1Gi volume (seen by the guest at exactly that size, then grown online to
2Gi and seen at the new size) and a read-only image disk from the node image cache. A volume
in use is not deleted until its VM is gone; deleting the instance removes its domain, seed and
local state but keeps its volumes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from controlplane.common.kube.client import EVENTS
from controlplane.nodehandler.context import INSTANCES, VOLUMES
from tests.integration.nodehandler.support import NodeEnv, instance, volume, wait_for
from tests.services.guests import guest_status

pytestmark = pytest.mark.integration
NS = "storage"
GI = 2**30


def _disks(ip: str) -> dict[str, int]:
    return {d.split()[0]: int(d.split()[1]) for d in guest_status(ip).get("disk", [])}


@pytest.fixture(scope="module")
def vm(node_env: NodeEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = node_env
    if not env.agent.alive():
        env.agent.start()
    env.ensure_namespace(NS)
    work = tmp_path_factory.mktemp("storage")
    source = work / "source.qcow2"
    shutil.copyfile(env.image, source)
    extra = work / "extra.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(extra), "8M"], check=True)
    env.create_volume(volume("root", env.node, "64Mi", image_ref=f"file://{source}", namespace=NS))
    env.create_volume(volume("data", env.node, "1Gi", namespace=NS))
    root = env.volume_ready("root", NS)
    env.volume_ready("data", NS)
    yield {"root_path": root["status"]["path"], "source": str(source), "extra": str(extra), "ip": env.agent.guest_ip(40)}
    env.kube.delete_if_exists(INSTANCES, "vm-s", NS)
    for name in ("root", "data"):
        env.kube.delete_if_exists(VOLUMES, name, NS)


def test_volume_from_an_image_is_a_standalone_copy(node_env: NodeEnv, vm: dict[str, str]) -> None:
    env = node_env
    root = env.kube.get(VOLUMES, "root", NS)["status"]
    assert root["phase"] == "Ready" and root["capacityBytes"] == 64 * 2**20 and root["progress"] == "100%"
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", root["path"]], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    # the source goes away, and so does the node's cached copy of it: the volume must not care
    Path(vm["source"]).unlink()
    for cached in (env.agent.state_dir / "images").glob("*"):
        cached.unlink()


def test_instance_boots_from_it_and_sees_empty_and_image_disks(node_env: NodeEnv, vm: dict[str, str]) -> None:
    env = node_env
    obj = env.create_instance(instance(
        "vm-s", env.node, namespace=NS, hostname="vm-storage", grace=10,
        disks=[{"name": "root", "volume": {"name": "root"}}, {"name": "data", "volume": {"name": "data"}},
               {"name": "extra", "image": {"ref": f"file://{vm['extra']}"}}],
        nics=[{"name": "default", "mac": "52:54:00:5e:00:01", "ip": vm["ip"]}]))
    vm["uid"] = obj["metadata"]["uid"]
    marker = env.wait_marker(vm["uid"])
    assert marker.hostname == "vm-storage"
    disks = _disks(vm["ip"])
    assert disks["vda"] == 64 * 2**20
    assert disks["vdb"] == 1 * GI, "the empty 1Gi volume is seen at exactly 1Gi"
    assert disks["vdc"] == 8 * 2**20, "the image disk is attached from the node's cache"


def test_online_resize_is_seen_by_the_guest(node_env: NodeEnv, vm: dict[str, str]) -> None:
    env = node_env
    env.kube.patch(VOLUMES, "data", {"spec": {"size": "2Gi"}}, NS)
    wait_for(lambda: env.kube.get(VOLUMES, "data", NS)["status"].get("capacityBytes") == 2 * GI, timeout=30,
             what="volume data grown to 2Gi")
    wait_for(lambda: _disks(vm["ip"])["vdb"] == 2 * GI, timeout=15, what="the guest sees vdb at 2Gi")
    events = [e for e in env.kube.list(EVENTS, NS)["items"] if e["involvedObject"].get("name") == "data"]
    assert any(e["reason"] == "Resized" and "online" in e["message"] for e in events)


def test_volumes_only_grow(node_env: NodeEnv, vm: dict[str, str]) -> None:
    env = node_env
    env.kube.patch(VOLUMES, "root", {"spec": {"size": "32Mi"}}, NS)
    st = wait_for(lambda: (s := env.kube.get(VOLUMES, "root", NS)["status"]).get("message") and s, timeout=15,
                  what="shrink refused")
    assert "only grow" in st["message"] and st["capacityBytes"] == 64 * 2**20


def test_a_volume_in_use_waits_and_deleting_the_instance_keeps_volumes(
        node_env: NodeEnv, vm: dict[str, str], libvirt_conn: libvirt.virConnect) -> None:
    env = node_env
    data_path = Path(env.kube.get(VOLUMES, "data", NS)["status"]["path"])
    env.kube.delete(VOLUMES, "data", NS)
    st = wait_for(lambda: (s := env.kube.get(VOLUMES, "data", NS)["status"]).get("phase") == "Terminating" and s,
                  timeout=15, what="volume data Terminating")
    assert "in use by storage/vm-s" in st["message"] and data_path.exists()

    uid = vm["uid"]
    seed = env.agent.state_dir / "instances" / uid / "seed.iso"
    assert seed.exists()
    env.kube.delete(INSTANCES, "vm-s", NS)
    wait_for(lambda: env.kube.get_or_none(INSTANCES, "vm-s", NS) is None, timeout=30, what="instance deleted")
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByUUIDString(uid)
    assert not seed.exists() and not (env.agent.state_dir / "instances" / uid).exists()
    assert Path(vm["root_path"]).exists(), "deleting an instance never deletes its volumes"
    wait_for(lambda: env.kube.get_or_none(VOLUMES, "data", NS) is None, timeout=30,
             what="volume data deleted once its VM is gone")
    assert not data_path.exists()
    env.kube.delete(VOLUMES, "root", NS)
    wait_for(lambda: not Path(vm["root_path"]).exists(), timeout=15, what="root volume file deleted")
