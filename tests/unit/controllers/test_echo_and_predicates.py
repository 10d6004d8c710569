"""Fewer reconciles per object (issue 13's saturation rate): a reconciler is not woken by the
watch event of its own write, unless a cycle waits for that very event; the watches between
VMs, disks and addresses ignore the changes of fields the other side does not read; a watch
that maps an object to other objects' keys also wakes the keys it mapped to before a change.
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.api.resources import VIRTUAL_DISKS, VIRTUAL_MACHINES
from controlplane.common.kube.informer import Informer
from controlplane.controllers.disk.controller import vm_seen_by_disk_changed
from controlplane.controllers.ipam.vmip import LEASE_FIELDS_READ
from controlplane.controllers.ipam.vmmac import names_changed
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.state import State
from controlplane.controllers.runtime.watchers import Watch, connect, own_key
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.vm.controller import DISK_FIELDS_READ, VMIP_FIELDS_READ
from tests.unit.controllers.recorders import CollectedEvents


class WritingKube:
    """Each status write makes the next resourceVersion."""

    def replace(self, _res: Any, body: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        return {**body, "metadata": {**body["metadata"], "resourceVersion": str(int(body["metadata"]["resourceVersion"]) + 1)}}


class Queue:
    def __init__(self) -> None:
        self.keys: list[Any] = []

    def enqueue(self, key: Any) -> None:
        self.keys.append(key)


class Progress:
    name = "progress"

    def handle(self, state: State) -> None:
        state.status["phase"] = "Ready"


DISK = {"metadata": {"name": "d", "namespace": "ns", "resourceVersion": "1"}, "spec": {}}


def wired(*, drop_echoes: bool) -> tuple[Reconciler, Informer, Queue]:
    """A disk reconciler over a real informer cache, its own-kind watch connected to a queue."""
    ctx = Context(kube=WritingKube(), settings=PlatformSettings(), recorder=CollectedEvents())
    informer = Informer(None, VIRTUAL_DISKS)  # type: ignore[arg-type]
    ctx.informers[VIRTUAL_DISKS] = informer
    rec = Reconciler(ctx, VIRTUAL_DISKS, [Progress()], drop_echoes=drop_echoes)
    queue = Queue()
    connect(ctx, queue, [Watch(VIRTUAL_DISKS, lambda o: [own_key(o)])],  # type: ignore[arg-type]
            own=VIRTUAL_DISKS, echo=rec.echo)
    informer._apply({"type": "ADDED", "object": copy.deepcopy(DISK)})
    return rec, informer, queue


def modified(informer: Informer, rv: str, status: dict[str, Any]) -> None:
    informer._apply({"type": "MODIFIED", "object": {**copy.deepcopy(DISK), "status": status,
                                                    "metadata": {**DISK["metadata"], "resourceVersion": rv}}})


def test_a_status_only_echo_of_its_own_write_does_not_enqueue_the_disk() -> None:
    rec, informer, queue = wired(drop_echoes=True)
    assert queue.keys == [("ns", "d")]  # created: reconciled
    rec(("ns", "d"))  # writes status.phase=Ready as version 2
    modified(informer, "2", {"phase": "Ready"})
    assert queue.keys == [("ns", "d")]  # the echo of the write: nothing to decide
    modified(informer, "3", {"phase": "Ready", "progress": "100%"})
    assert queue.keys == [("ns", "d"), ("ns", "d")]  # someone else's write: reconciled


def test_the_echo_wakes_a_cycle_that_waits_for_it() -> None:
    rec, informer, queue = wired(drop_echoes=True)
    rec(("ns", "d"))  # writes version 2; the cache still holds version 1
    waiting = rec(("ns", "d"))  # queued again by a related object before the echo came
    assert waiting is not None and waiting.requeue_after is not None
    modified(informer, "2", {"phase": "Ready"})
    assert queue.keys == [("ns", "d"), ("ns", "d")]  # the waiting cycle runs now, not after its wait


class MovingCache:
    """A cache that takes the echo between the cycle's read and its decision to wait for it."""

    def __init__(self, versions: list[dict[str, Any]]) -> None:
        self.versions = versions

    def get(self, _namespace: str, _name: str) -> dict[str, Any]:
        return self.versions.pop(0) if len(self.versions) > 1 else self.versions[0]


def test_an_echo_that_came_while_the_cycle_decided_to_wait_is_not_waited_for() -> None:
    ctx = Context(kube=WritingKube(), settings=PlatformSettings(), recorder=CollectedEvents())
    ctx.informers[VIRTUAL_DISKS] = MovingCache([copy.deepcopy(DISK)])  # type: ignore[assignment]
    rec = Reconciler(ctx, VIRTUAL_DISKS, [Progress()], drop_echoes=True)
    rec(("ns", "d"))  # writes version 2
    echoed = {**DISK, "metadata": {**DISK["metadata"], "resourceVersion": "2"}, "status": {"phase": "Ready"}}
    ctx.informers[VIRTUAL_DISKS] = MovingCache([copy.deepcopy(DISK), echoed])  # type: ignore[assignment]
    assert rec.echo(echoed)  # delivered (and dropped) between the cycle's read and its wait
    again = rec(("ns", "d"))
    assert again is not None and again.requeue_after == 0.0  # at once, not after stale_cache_wait


def test_a_kind_that_does_not_opt_in_is_woken_by_its_own_echo() -> None:
    rec, informer, queue = wired(drop_echoes=False)
    rec(("ns", "d"))
    modified(informer, "2", {"phase": "Ready"})
    assert queue.keys == [("ns", "d"), ("ns", "d")]


def test_a_watch_wakes_the_keys_an_object_mapped_to_before_the_change() -> None:
    ctx = Context(kube=None, settings=PlatformSettings(), recorder=CollectedEvents())
    vms = Informer(None, VIRTUAL_MACHINES)  # type: ignore[arg-type]
    ctx.informers[VIRTUAL_MACHINES] = vms
    queue = Queue()
    connect(ctx, queue, [Watch(VIRTUAL_MACHINES, lambda vm: [("ns", r["name"]) for r in vm["spec"]["refs"]])])  # type: ignore[arg-type]
    vm: dict[str, Any] = {"metadata": {"name": "vm", "namespace": "ns", "resourceVersion": "1"}, "spec": {"refs": [{"name": "d"}]}}
    vms._apply({"type": "ADDED", "object": vm})
    vms._apply({"type": "MODIFIED", "object": {**vm, "spec": {"refs": []}}})  # the disk is no longer used
    assert queue.keys == [("ns", "d"), ("ns", "d")]


VM: dict[str, Any] = {"metadata": {"name": "vm", "namespace": "ns"},
                      "spec": {"blockDeviceRefs": [{"kind": "VirtualDisk", "name": "d"}]},
                      "status": {"phase": "Pending", "blockDeviceRefs": [{"kind": "VirtualDisk", "name": "d", "size": "",
                                                                          "attached": False}]}}


def changed_vm(**status: Any) -> dict[str, Any]:
    vm = copy.deepcopy(VM)
    vm["status"].update(status)
    return vm


def test_a_disk_ignores_the_vm_changes_it_does_not_read() -> None:
    sized = changed_vm(blockDeviceRefs=[{"kind": "VirtualDisk", "name": "d", "size": "1Gi", "attached": True}])
    assert not vm_seen_by_disk_changed(sized, VM)  # its own size and attachment, as the VM shows them
    assert not vm_seen_by_disk_changed(changed_vm(conditions=[{"type": "Running", "status": "False"}]), VM)
    assert not vm_seen_by_disk_changed(changed_vm(phase="Stopped"), VM)  # neither holds the disk


def test_a_disk_sees_the_vm_changes_it_reads() -> None:
    assert vm_seen_by_disk_changed(VM, None)
    assert vm_seen_by_disk_changed(changed_vm(nodeName="n1"), VM)  # where to provision it
    assert vm_seen_by_disk_changed(changed_vm(phase="Starting"), VM)  # a deletion now waits
    assert vm_seen_by_disk_changed(changed_vm(phase="Running"), changed_vm(phase="Starting"))  # mounted
    more = changed_vm(blockDeviceRefs=[{"kind": "VirtualDisk", "name": "d"}, {"kind": "VirtualDisk", "name": "e"}])
    assert vm_seen_by_disk_changed(more, VM)
    deleting = copy.deepcopy(VM)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert vm_seen_by_disk_changed(deleting, VM)


def test_a_vm_ignores_its_disks_usage_and_its_address_leases_status() -> None:
    disk: dict[str, Any] = {"metadata": {"name": "d"}, "status": {"phase": "WaitForFirstConsumer"}}
    used = copy.deepcopy(disk)
    used["status"]["attachedToVirtualMachines"] = [{"name": "vm", "mounted": False}]
    assert not DISK_FIELDS_READ(used, disk)
    ready = copy.deepcopy(disk)
    ready["status"].update(phase="Ready", capacity="1Gi")
    assert DISK_FIELDS_READ(ready, disk)

    vmip: dict[str, Any] = {"metadata": {"name": "vm"}, "status": {"phase": "Bound", "address": "10.0.0.2"}}
    attached = copy.deepcopy(vmip)
    attached["status"]["virtualMachineName"] = "vm"
    assert not VMIP_FIELDS_READ(attached, vmip)
    assert VMIP_FIELDS_READ({**attached, "status": {**attached["status"], "phase": "Attached"}}, vmip)

    lease: dict[str, Any] = {"metadata": {"name": "ip-10-0-0-2"}, "spec": {"virtualMachineIPAddressRef": {"name": "vm"}}}
    assert not LEASE_FIELDS_READ({**lease, "status": {"phase": "Bound"}}, lease)
    assert LEASE_FIELDS_READ({**lease, "spec": {"virtualMachineIPAddressRef": {"name": ""}}}, lease)


def test_a_mac_address_sees_which_addresses_a_vm_names_not_what_they_are() -> None:
    vm: dict[str, Any] = {"metadata": {"name": "vm", "namespace": "ns"}, "spec": {},
                          "status": {"networks": [{"type": "Main", "virtualMachineMACAddressName": "vm-mac"}]}}
    bound = copy.deepcopy(vm)
    bound["status"]["networks"][0]["macAddress"] = "02:d8:76:00:00:01"
    assert not names_changed(bound, vm)
    renamed = copy.deepcopy(vm)
    renamed["status"]["networks"][0]["virtualMachineMACAddressName"] = "vm-mac-2"
    assert names_changed(renamed, vm) and names_changed(vm, None)
