"""bench/snapshot: VirtualMachineSnapshot, VMOP Restore and VMOP Clone of a stopped VM, and a
VirtualDiskSnapshot of its data disk, against the same done by hand in the same run.

A whole one-host platform (`dvp server` with controllers and the in-process node handler on the
test libvirtd) runs a VM (runPolicy Manual, so a clone stays stopped) with a root disk and an
empty 4 GiB data disk; once the VM is stopped, 1 GiB (pattern 0x5a) is written into the data
disk's volume file with `qemu-io` (the guest under TCG would take minutes; the bytes on disk are
the same). Our figures are from the POST to the phase named, seen through a watch:

- VirtualMachineSnapshot of the stopped VM -> Ready (a VirtualDiskSnapshot per disk: the node
  handler renames each disk's file to the snapshot's and gives the disk a new empty qcow2 overlay
  on it, `volume_chain.freeze`; nothing copied);
- a 1 MiB marker (0xcc) is then written over the data disk, and VMOP Restore from that snapshot
  -> Completed (each disk, unchanged since the snapshot, put back in place: its volume's file
  replaced by a new empty overlay on the snapshot's file, nothing copied); the restored data disk
  must read 0x5a again (checked, untimed);
- VMOP Clone -> Completed (its disks Ready; content checked, untimed): its temporary snapshot is
  an overlay step as above, the clone's disks `qemu-img convert` of the snapshot files (flat
  copies: the data is read once); the temporary snapshot is deleted after Completed (untimed: it
  commits each disk's small overlay back into its file), and clone and snapshot are deleted
  (untimed) before the next turn (the snapshot's delete folds the overlays back the same way).

The peer (`bench/snapshot_byhand.py`) works on copies of the very same volume files in an
inactive domain defined from the XML our node handler wrote: snapshot = `virsh
snapshot-create-as --disk-only --atomic` (external overlays; libvirt can make them for a stopped
domain), restore = a fresh overlay on each snapshot file and the domain defined on them (libvirt
9.0 cannot `snapshot-revert` an external snapshot), marker checked the same way; clone =
`qemu-img convert -O qcow2` of both disk files — our VM's current volume files, the ones our
clone copies, at the same step, both after those files were read once (untimed: a volume our
node handler has just written is not in the page cache, and the first to read it paid 1-2 s
more). The same `qemu-img convert` figure is also shown
next to our snapshot and restore, as what a copy would cost (ours copied until issue 17's chain
model; now both sides make overlays, and the overlay rows are the like-for-like ones).

The VirtualDiskSnapshot rows (kept from the first version of this bench): a snapshot of the data
disk -> Ready against `qemu-img convert` of its volume file, for the VM stopped (an overlay step,
no copy: the peer here is the copy it no longer makes) and running (a libvirt backup of the running domain,
`requiredConsistency: false` since the test guest has no agent; the peer then reads the live
file with `-U`). Medians over --rounds, ours and the peer taking turns to go first, with `sync`
before each measurement (each step of the machine rows too).

Reading the running row: the peer's `qemu-img convert -U` reads a file the guest is writing (no
point in time, qcow2 metadata possibly torn); ours is a point-in-time copy by QEMU's backup job,
which under software emulation (TCG, as on these test machines) shares QEMU's main loop with the
emulated vCPU and crawls; measured alone against an idle domain it is within ~2x of the peer.

    python -m bench.snapshot [--rounds 3] [-o json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.guest_platform import guest_platform
from bench.report import Row, print_table
from bench.snapshot_byhand import ByHand
from controlplane.api.resources import (
    VIRTUAL_DISK_SNAPSHOTS,
    VIRTUAL_DISKS,
    VIRTUAL_MACHINE_OPERATIONS,
    VIRTUAL_MACHINE_SNAPSHOTS,
    VIRTUAL_MACHINES,
)
from controlplane.common.kube.client import KubeClient, Resource
from tests.integration.quickstart.manifests import API, vd_empty, vd_from_image, vm, vmop
from tests.integration.quickstart.platform import Platform

VOLUMES = "internalvirtualdiskvolumes.internal.virtualization.deckhouse.io"
SIZE = "4Gi"
WRITTEN_MIB = 1024
SETTLE = 3.0
"""Seconds of quiet before each step of the machine rows: this VM's disk keeps writing back for
a while after `sync` returns, and whichever side ran first after our restore (a GiB written) paid
1-3 s for it in its copy."""
DISKS = ("bench-root", "bench-data")


def _wait(check: Any, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(every)
    return value


def holds(path: str, pattern: int, offset_mib: int = 0) -> bool:
    """The qcow2 file reads `pattern` over 1 MiB at `offset_mib`."""
    out = subprocess.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", f"read -P {pattern:#x} {offset_mib}M 1M", path],
                         capture_output=True, text=True, check=True)
    return "verification failed" not in out.stdout + out.stderr


def sync() -> None:
    """Dirty pages flushed (untimed) before each measurement, so none pays for the writes of the
    one before (ours copies a GiB at each step; the overlays by hand write next to nothing)."""
    subprocess.run(["sync"], check=True)


def warm(paths: list[str]) -> None:
    """The files read once (untimed), so the next copy of them finds them in the page cache
    whichever side goes first: a volume the node handler has just written is not (it is read
    from the disk at 0.3-1 GB/s here), and the first reader used to pay for it."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(16 << 20):
                pass


def mark(path: str) -> None:
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xcc 0 1M", path], check=True, capture_output=True)


class Bench:
    def __init__(self, platform: Platform, work: Path) -> None:
        self.p = platform
        self.kube = KubeClient.from_kubeconfig(platform.server.kubeconfig)
        self.work = work
        self.n = 0

    def setup(self) -> str:
        """The VM Stopped after a first boot, its data disk Ready and written; returns the data
        volume's file."""
        self.p.apply(vd_from_image(DISKS[0], "bench-guest"), vd_empty(DISKS[1], SIZE),
                     vm("bench-vm", DISKS[0], extra_disks=(DISKS[1],), memory="128Mi", core_fraction="5%",
                        run_policy="Manual"))
        self.power("Start", "Running")
        self.p.phase("vd", DISKS[1], "Ready", timeout=120)
        self.power("Stop", "Stopped")
        path = self.volume(DISKS[1])
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {WRITTEN_MIB}M", path], check=True,
                       capture_output=True)
        return path

    def volume(self, disk: str) -> str:
        return str(self.p.get(VOLUMES, disk)["status"]["path"])

    def power(self, op: str, phase: str) -> None:
        self.n += 1
        self.p.apply(vmop(f"bench-{op.lower()}-{self.n}", "bench-vm", op))
        self.p.phase("vm", "bench-vm", phase, timeout=180)

    def _timed(self, res: Resource, doc: dict[str, Any], done: tuple[str, ...], failed: tuple[str, ...]) -> float:
        """From the POST to the first watch event that shows a phase in `done` or `failed` (a
        watch from the created object's version: no event is missed, and none is seen later
        than the server sends it, as a poll would)."""
        name = doc["metadata"]["name"]
        t0 = time.monotonic()
        created = self.kube.create(res, doc)
        end, took = None, 0.0
        for event in self.kube.watch(res, "default", resource_version=created["metadata"]["resourceVersion"],
                                     field_selector=f"metadata.name={name}", timeout_seconds=900, bookmarks=False):
            got = (event["object"].get("status") or {}).get("phase")
            if got in done + failed:
                took, end = time.monotonic() - t0, got
                break
        if end is None:
            raise TimeoutError(f"{res.kind} {name} done")
        if end in failed:
            raise RuntimeError(f"{res.kind} {name}: {self.kube.get(res, name, 'default')['status']}")
        return took

    def disk_snapshot(self, *, consistent: bool) -> float:
        self.n += 1
        name = f"bench-snap-{self.n}"
        took = self._timed(VIRTUAL_DISK_SNAPSHOTS, {
            "apiVersion": API, "kind": "VirtualDiskSnapshot", "metadata": {"name": name, "namespace": "default"},
            "spec": {"virtualDiskName": DISKS[1], "requiredConsistency": consistent}}, ("Ready",), ("Failed",))
        self.kube.delete(VIRTUAL_DISK_SNAPSHOTS, name, "default")
        _wait(lambda: not self._snapshot_volumes(), 120, "snapshot volumes deleted", every=0.2)
        return took

    def vm_snapshot(self) -> float:
        """A VirtualMachineSnapshot of the stopped VM; then a marker over its data disk (untimed)."""
        self.n += 1
        took = self._timed(VIRTUAL_MACHINE_SNAPSHOTS, {
            "apiVersion": API, "kind": "VirtualMachineSnapshot",
            "metadata": {"name": f"bench-vms-{self.n}", "namespace": "default"},
            "spec": {"virtualMachineName": "bench-vm", "requiredConsistency": True, "keepIPAddress": "Never"}},
            ("Ready",), ("Failed",))
        mark(self.volume(DISKS[1]))
        return took

    def vm_restore(self) -> float:
        """VMOP Restore from the snapshot just taken; the marker must be gone (checked, untimed)."""
        took = self._timed(VIRTUAL_MACHINE_OPERATIONS, {
            "apiVersion": API, "kind": "VirtualMachineOperation",
            "metadata": {"name": f"bench-restore-{self.n}", "namespace": "default"},
            "spec": {"type": "Restore", "virtualMachineName": "bench-vm",
                     "restore": {"mode": "Strict", "virtualMachineSnapshotName": f"bench-vms-{self.n}"}}},
            ("Completed",), ("Failed",))
        if not holds(self.volume(DISKS[1]), 0x5A):
            raise RuntimeError("the restored data disk does not hold the content of snapshot time")
        return took

    def vm_clone(self) -> float:
        """VMOP Clone; the clone's data disk checked (untimed), then clone and snapshot deleted."""
        suffix = f"-clone-{self.n}"
        took = self._timed(VIRTUAL_MACHINE_OPERATIONS, {
            "apiVersion": API, "kind": "VirtualMachineOperation",
            "metadata": {"name": f"bench-clone-{self.n}", "namespace": "default"},
            "spec": {"type": "Clone", "virtualMachineName": "bench-vm",
                     "clone": {"mode": "Strict", "customization": {"nameSuffix": suffix}}}}, ("Completed",), ("Failed",))
        if not holds(self.volume(DISKS[1] + suffix), 0x5A, WRITTEN_MIB - 1):
            raise RuntimeError("the clone's data disk does not hold the source's content")
        self.kube.delete(VIRTUAL_MACHINES, "bench-vm" + suffix, "default")
        for disk in DISKS:
            self.kube.delete(VIRTUAL_DISKS, disk + suffix, "default")
        self.kube.delete(VIRTUAL_MACHINE_SNAPSHOTS, f"bench-vms-{self.n}", "default")
        _wait(lambda: not self._snapshot_volumes() and not any(suffix in v for v in self._volumes()), 180,
              "snapshot and clone volumes deleted", every=0.2)
        return took

    def _volumes(self) -> list[str]:
        return self.p.kubectl("get", VOLUMES, "-o", "name").split()

    def _snapshot_volumes(self) -> list[str]:
        return [line for line in self._volumes() if "/vds-" in line]

    def peer_copy(self, path: str, *, live: bool) -> float:
        self.n += 1
        target = self.work / f"peer-{self.n}.qcow2"
        t0 = time.monotonic()
        subprocess.run(["qemu-img", "convert", *(["-U"] if live else []), "-f", "qcow2", "-O", "qcow2", path,
                        str(target)], check=True, capture_output=True)
        took = time.monotonic() - t0
        target.unlink()
        return took


def by_hand_snapshot(peer: ByHand) -> float:
    took = peer.snapshot()
    mark(peer.data_file())
    return took


def by_hand_restore(peer: ByHand) -> float:
    took = peer.restore()
    if not holds(peer.data_file(), 0x5A):
        raise RuntimeError("the peer's restored data disk does not hold the content of snapshot time")
    peer.reset()
    return took


def machine_rounds(n: int, bench: Bench, peer: ByHand) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    """n rounds of (snapshot, restore, clone) each; at every step ours and the peer take turns
    to go first (alternating by round), with `sync`, our volume files read (`warm`) and SETTLE
    seconds of quiet before each, so both meet the same page cache and an idle disk."""
    steps = {"ours": (bench.vm_snapshot, bench.vm_restore, bench.vm_clone),
             "peer": (lambda: by_hand_snapshot(peer), lambda: by_hand_restore(peer),
                      lambda: peer.clone([bench.volume(d) for d in DISKS]))}
    got: dict[str, list[tuple[float, ...]]] = {"ours": [], "peer": []}
    for i in range(n):
        order = ("ours", "peer") if i % 2 == 0 else ("peer", "ours")
        took: dict[str, list[float]] = {"ours": [], "peer": []}
        for step in range(3):
            for who in order:
                sync()
                warm([bench.volume(d) for d in DISKS])
                time.sleep(SETTLE)
                took[who].append(steps[who][step]())
        for who in order:
            got[who].append(tuple(took[who]))
    return got["ours"], got["peer"]


def alternate(n: int, ours: Callable[[], Any], peer: Callable[[], Any]) -> tuple[list[Any], list[Any]]:
    """n measurements each, alternating which goes first, `sync` before each."""
    got: dict[str, list[Any]] = {"ours": [], "peer": []}
    for i in range(n):
        for who in (("ours", "peer") if i % 2 == 0 else ("peer", "ours")):
            sync()
            got[who].append(ours() if who == "ours" else peer())
    return got["ours"], got["peer"]


def run(rounds: int) -> list[Row]:
    with guest_platform("dvp-bench-snapshot-") as (platform, work):
        bench = Bench(platform, work)
        path = bench.setup()
        dom = next(d for d in platform.domains() if not d.isActive())
        peer = ByHand(platform.conn, dom, work / "byhand", f"{platform.prefix}bench-byhand")
        try:
            bench.disk_snapshot(consistent=True)  # warm-up
            machine, machine_peer = machine_rounds(rounds, bench, peer)
        finally:
            peer.close()
        path = bench.volume(DISKS[1])  # the data disk's file as the restores left it
        stopped, stopped_peer = alternate(rounds, lambda: bench.disk_snapshot(consistent=True),
                                          lambda: bench.peer_copy(path, live=False))
        bench.power("Start", "Running")
        running, running_peer = alternate(rounds, lambda: bench.disk_snapshot(consistent=False),
                                          lambda: bench.peer_copy(path, live=True))

    def med(values: list[Any], i: int | None = None) -> float:
        return statistics.median(v if i is None else v[i] for v in values) * 1000.0

    convert = "`qemu-img convert` of both disks"
    return [
        Row("VM: VirtualMachineSnapshot Ready vs `virsh snapshot-create-as --disk-only`", med(machine, 0),
            med(machine_peer, 0), "ms", "lower"),
        Row("VM: VMOP Restore Completed vs new overlays + domain redefined", med(machine, 1), med(machine_peer, 1),
            "ms", "lower"),
        Row(f"VM: VMOP Clone Completed vs {convert}", med(machine, 2), med(machine_peer, 2), "ms", "lower"),
        Row(f"VM: VirtualMachineSnapshot Ready vs {convert} (what a copy costs)", med(machine, 0), med(machine_peer, 2),
            "ms", "lower"),
        Row(f"VM: VMOP Restore Completed vs {convert} (what a copy costs)", med(machine, 1), med(machine_peer, 2),
            "ms", "lower"),
        Row("data disk, VM stopped: VirtualDiskSnapshot Ready vs `qemu-img convert`", med(stopped), med(stopped_peer),
            "ms", "lower"),
        Row("data disk, VM running: VirtualDiskSnapshot Ready vs `qemu-img convert -U`", med(running),
            med(running_peer), "ms", "lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows = run(args.rounds)
    print_table(f"bench/snapshot: root disk + {SIZE} data disk ({WRITTEN_MIB} MiB written), VM stopped unless said; "
                f"medians of {args.rounds}", "dvp (POST -> phase)", "by hand (peer named in the row)", rows,
                json_out=args.output == "json")


if __name__ == "__main__":
    main()
