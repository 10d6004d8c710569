"""One contract between the controllers and the node handler: what the VM and disk controllers
build is what the node handler parses back, field for field."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from controlplane.api.instance import (
    DiskBus,
    DiskSpec,
    Firmware,
    MachineType,
    NicModel,
    NicSpec,
    PowerRequest,
    SpecError,
    build_spec,
    parse_instance,
)
from controlplane.api.internal import VOLUME_FINALIZER, PowerAction, RunState
from controlplane.api.resources import NODE_LABEL, VOLUMES
from controlplane.api.volume import VolumeSpec, parse_volume, size_patch
from controlplane.nodehandler.context import NodeContext

ROOT = DiskSpec(name="vd-root", bus=DiskBus.VIRTIO, read_only=False, cdrom=False, boot_order=1, volume="root",
                image_ref=None)
ISO = DiskSpec(name="cvi-iso", bus=DiskBus.SCSI, read_only=True, cdrom=True, boot_order=2, volume=None,
               image_ref="dvcr:5443/cvi/iso:latest")
HOT = DiskSpec(name="vd-data", bus=DiskBus.VIRTIO, read_only=False, cdrom=False, boot_order=3, volume="data",
               image_ref=None, hotplugged=True)
NIC = NicSpec(name="default", mac="52:54:00:aa:bb:cc", ip="10.66.0.5", network="default", model=NicModel.VIRTIO)


def test_what_the_vm_controller_builds_the_node_handler_reads_back() -> None:
    spec = build_spec(node_name="n1", hostname="vm", firmware=Firmware.EFI, machine_type=MachineType.Q35,
                      paravirtualization=True, cores=2, cpu_model="host-model", core_fraction="50%",
                      memory_size="1Gi", disks=[ROOT, ISO, HOT], nics=[NIC], grace_period=30, user_data="#cloud-config")
    spec["runState"] = RunState.RUNNING
    spec["powerRequest"] = PowerRequest(id="r1", action=PowerAction.RESTART, force=True).to_api()
    parsed = parse_instance({"metadata": {"name": "vm", "namespace": "ns"}, "spec": spec})
    assert parsed.disks == (ROOT, ISO, HOT)
    assert parsed.nics == (NIC,)
    assert parsed.power_request == PowerRequest(id="r1", action=PowerAction.RESTART, force=True)
    assert (parsed.node_name, parsed.firmware, parsed.machine_type, parsed.cores, parsed.core_fraction,
            parsed.memory_bytes, parsed.user_data, parsed.grace_period) == \
        ("n1", "EFI", "q35", 2, 50, 2**30, "#cloud-config", 30)
    assert parsed.run_state is RunState.RUNNING


def test_a_hotplugged_disk_has_no_boot_order_on_the_wire() -> None:
    assert "bootOrder" not in HOT.to_api() and HOT.to_api()["hotplugged"] is True
    assert ROOT.to_api() == {"name": "vd-root", "bus": "virtio", "volume": {"name": "root"}, "bootOrder": 1}


@pytest.mark.parametrize("volume", [
    VolumeSpec(node_name="n1", size_bytes=10 * 2**30),
    VolumeSpec(node_name="n1", size_bytes=2**30, image_ref="dvcr:5443/vi/ns/img:latest", image_digest="sha256:ab"),
    VolumeSpec(node_name="n1", size_bytes=2**30, source_volume="vds-1", require_consistency=True),
    VolumeSpec(node_name="n1", size_bytes=2**30, source_volume="vds-2", take_source=True),
], ids=["empty", "from-image", "copy-of-volume", "take-volume"])
def test_what_the_disk_controller_builds_the_node_handler_reads_back(volume: VolumeSpec) -> None:
    assert parse_volume({"spec": volume.to_api()}) == volume
    grown = {"spec": {**volume.to_api(), **size_patch(volume.size_bytes * 2)["spec"]}}
    assert parse_volume(grown).size_bytes == volume.size_bytes * 2


def test_a_new_volume_carries_the_node_handlers_finalizer_so_it_writes_none_before_provisioning() -> None:
    owner = {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualDisk", "name": "d", "uid": "u"}
    obj = VolumeSpec(node_name="n1", size_bytes=2**30).new_object("d", "ns", owner)
    assert obj["metadata"] == {"name": "d", "namespace": "ns", "labels": {NODE_LABEL: "n1"},
                               "ownerReferences": [owner], "finalizers": [VOLUME_FINALIZER]}
    assert parse_volume(obj) == VolumeSpec(node_name="n1", size_bytes=2**30)
    patches: list[Any] = []
    node = NodeContext.__new__(NodeContext)
    node.kube = SimpleNamespace(patch=lambda *a, **k: patches.append(a))  # type: ignore[assignment]
    stored = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}}
    assert node.add_finalizer(VOLUMES, stored, VOLUME_FINALIZER) is stored
    assert patches == []


def test_a_volume_size_that_is_not_a_quantity_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"^spec\.size: 'lots'"):
        parse_volume({"spec": {"nodeName": "n1", "size": "lots"}})
