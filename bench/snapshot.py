"""bench/snapshot: how long a VirtualDiskSnapshot of a disk takes, against a plain `qemu-img
convert` of the same volume file, measured in the same run.

A whole one-host platform (`dvp server` with controllers and the in-process node handler on the
test libvirtd) runs a VM with a root disk and an empty 2 GiB data disk; 500 MiB are written
into the data disk's volume. Ours: from the POST of a VirtualDiskSnapshot of the data disk to its
phase Ready (polled every 20 ms through the API), the copy made by the node handler. The
peer: `qemu-img convert -f qcow2 -O qcow2` of the very same volume file to a new file, by hand.
Both for the VM stopped (the node handler copies the file offline) and running (the node handler
copies through a libvirt backup of the running domain, `requiredConsistency: false` since the
test guest has no agent; the peer then reads the live file with `-U`). Medians over --rounds,
the two taking turns to go first, with `sync` before each measurement.

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
from pathlib import Path
from typing import Any

from bench.guest_platform import guest_platform
from bench.report import Row, print_table
from controlplane.api.resources import VIRTUAL_DISK_SNAPSHOTS
from controlplane.common.kube.client import KubeClient
from tests.integration.quickstart.manifests import API, vd_empty, vd_from_image, vm, vmop
from tests.integration.quickstart.platform import Platform

VOLUMES = "internalvirtualdiskvolumes.internal.virtualization.deckhouse.io"
SIZE = "2Gi"
WRITTEN_MIB = 500


def _wait(check: Any, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(every)
    return value


class Bench:
    def __init__(self, platform: Platform, work: Path) -> None:
        self.p = platform
        self.kube = KubeClient.from_kubeconfig(platform.server.kubeconfig)
        self.work = work
        self.n = 0

    def setup(self) -> str:
        """The VM Running with its data disk Ready; returns the data volume's file."""
        self.p.apply(vd_from_image("bench-root", "bench-guest"), vd_empty("bench-data", SIZE),
                     vm("bench-vm", "bench-root", extra_disks=("bench-data",), memory="128Mi", core_fraction="5%"))
        self.p.phase("vm", "bench-vm", "Running", timeout=300)
        self.p.phase("vd", "bench-data", "Ready", timeout=120)
        path = str(self.p.get(VOLUMES, "bench-data")["status"]["path"])
        self.p.apply(vmop("bench-stop-0", "bench-vm", "Stop"))
        self.p.phase("vm", "bench-vm", "Stopped", timeout=120)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {WRITTEN_MIB}M", path], check=True,
                       capture_output=True)
        return path

    def power(self, op: str, phase: str) -> None:
        self.n += 1
        self.p.apply(vmop(f"bench-{op.lower()}-{self.n}", "bench-vm", op))
        self.p.phase("vm", "bench-vm", phase, timeout=180)

    def ours(self, *, consistent: bool) -> float:
        self.n += 1
        name = f"bench-snap-{self.n}"
        doc = {"apiVersion": API, "kind": "VirtualDiskSnapshot", "metadata": {"name": name, "namespace": "default"},
               "spec": {"virtualDiskName": "bench-data", "requiredConsistency": consistent}}

        def phase() -> str | None:
            got = (self.kube.get(VIRTUAL_DISK_SNAPSHOTS, name, "default").get("status") or {}).get("phase")
            return str(got) if got in ("Ready", "Failed") else None

        t0 = time.monotonic()
        self.kube.create(VIRTUAL_DISK_SNAPSHOTS, doc)
        done = _wait(phase, 600, f"snapshot {name} done", every=0.02)
        took = time.monotonic() - t0
        if done != "Ready":
            raise RuntimeError(f"snapshot {name}: {self.p.get('vds', name)['status']}")
        self.kube.delete(VIRTUAL_DISK_SNAPSHOTS, name, "default")
        _wait(lambda: not self._snapshot_volumes(), 120, "snapshot volumes deleted", every=0.2)
        return took

    def rounds(self, n: int, path: str, *, live: bool) -> tuple[list[float], list[float]]:
        """n measurements each, alternating which goes first; dirty pages flushed before each, so
        neither pays for the other's writes."""
        ours: list[float] = []
        peer: list[float] = []
        for i in range(n):
            for who in (("ours", "peer") if i % 2 == 0 else ("peer", "ours")):
                subprocess.run(["sync"], check=True)
                if who == "ours":
                    ours.append(self.ours(consistent=not live))
                else:
                    peer.append(self.peer(path, live=live))
        return ours, peer

    def _snapshot_volumes(self) -> list[str]:
        out = self.p.kubectl("get", VOLUMES, "-o", "name")
        return [line for line in out.split() if "/vds-" in line]

    def peer(self, path: str, *, live: bool) -> float:
        self.n += 1
        target = self.work / f"peer-{self.n}.qcow2"
        t0 = time.monotonic()
        subprocess.run(["qemu-img", "convert", *(["-U"] if live else []), "-f", "qcow2", "-O", "qcow2", path,
                        str(target)], check=True, capture_output=True)
        took = time.monotonic() - t0
        target.unlink()
        return took


def run(rounds: int) -> list[Row]:
    with guest_platform("dvp-bench-snapshot-") as (platform, work):
        bench = Bench(platform, work)
        path = bench.setup()
        bench.ours(consistent=True)  # warm-up
        stopped, stopped_peer = bench.rounds(rounds, path, live=False)
        bench.power("Start", "Running")
        running, running_peer = bench.rounds(rounds, path, live=True)
    ms = 1000.0
    what = f"{SIZE} disk, {WRITTEN_MIB} MiB written"
    return [
        Row(f"VM stopped, {what}: snapshot Ready, median", statistics.median(stopped) * ms,
            statistics.median(stopped_peer) * ms, "ms", "lower"),
        Row(f"VM running, {what}: snapshot Ready, median", statistics.median(running) * ms,
            statistics.median(running_peer) * ms, "ms", "lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows = run(args.rounds)
    print_table("bench/snapshot: VirtualDiskSnapshot (created -> Ready) vs qemu-img convert of the same file",
                "dvp VirtualDiskSnapshot", "qemu-img convert", rows, json_out=args.output == "json")


if __name__ == "__main__":
    main()
