"""bench/vmnet: the cost of the cross-host VM network (docs/network.md), against the plain
host-to-host network it runs on, measured in the same run.

A master (`dvp server`) and two workers (`dvp agent`) on lab hosts joined by one layer-2
segment (tests/support/routelab.py), VM routes on; one guest (the test image, software
emulation) on worker A. From worker B, TCP connection set-up times (SYN to SYN-ACK, answered
by the kernels alone, so no guest or host user space is timed) are measured, alternating, from
B and from A at the same time:

- ours: to the guest on A, through B's VM route (directly, or through VXLAN with `--mode
  vxlan`), A's forwarding and bridge, into the guest's kernel;
- peer 1, the same guest from its own host A (its bridge, no route of ours): what the routes
  add, with the guest's own answer time (slow under software emulation) on both sides;
- peer 2, worker A's own address from B (its console endpoint's port): host-to-host on the same
  segment, the issue's yardstick (target: the VM path within 1.5x), which under software
  emulation mostly measures the emulated guest kernel.

Prints p50 and p95 against each peer and the ratios.

    python -m bench.vmnet [--mode auto|vxlan] [--count 300] [-o json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import Row, percentile, print_table
from controlplane.common.kube.client import NAMESPACES
from controlplane.nodehandler.context import INSTANCES
from nodeimage.guest import ensure_image
from tests.support.routelab import RouteLab, instance

REPO = Path(__file__).resolve().parents[1]
VM_IP = "10.66.0.30"
PROBE = """
import json, socket, sys, time
targets, count = json.loads(sys.argv[1]), int(sys.argv[2])
out = {name: [] for name in targets}
for _ in range(count):
    for name, (host, port) in targets.items():  # alternating, so both see the same moments
        t0 = time.perf_counter()
        s = socket.create_connection((host, port), timeout=5)
        out[name].append((time.perf_counter() - t0) * 1000)
        s.close()
    time.sleep(0.005)
print(json.dumps(out))
"""


def run(mode: str, count: int) -> tuple[list[Row], dict[str, Any]]:
    image = ensure_image("cloud")
    lab = RouteLab(workers=2, route_mode=mode)
    try:
        _, a, b = lab.nodes
        kube = lab.kube()
        kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        kube.create(INSTANCES, instance("web", a.node, VM_IP, "52:54:00:7e:00:30", str(image.qcow2),
                                        namespace="bench"))
        deadline_s = 300
        for _ in range(deadline_s):
            if lab.http(b, f"http://{VM_IP}/"):
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"the guest on {a.name} did not answer from {b.name} within {deadline_s}s")
        console = 10250
        times: dict[str, list[float]] = {}
        probes = [subprocess.Popen(where.host.nsenter(sys.executable, "-c", PROBE, json.dumps(targets), str(count)),
                                   stdout=subprocess.PIPE, text=True)
                  for where, targets in ((b, {"vm": [VM_IP, 80], "host": [a.host.address, console]}),
                                         (a, {"local": [VM_IP, 80]}))]  # at once: the guest is equally busy for both
        for probe in probes:
            out, _ = probe.communicate()
            if probe.returncode != 0:
                raise RuntimeError(f"probe failed (exit {probe.returncode})")
            times.update(json.loads(out))
        route = b.sh("ip -4 route show table 166").stdout.strip()
    finally:
        lab.close()
    vm, local, host = times["vm"], times["local"], times["host"]
    rows = [Row("to the VM: from B (routed) vs from A (its host), p50", percentile(vm, 50), percentile(local, 50), "ms",
                better="lower"),
            Row("to the VM: from B (routed) vs from A (its host), p95", percentile(vm, 95), percentile(local, 95), "ms",
                better="lower"),
            Row("from B: to the VM on A vs to host A, p50", percentile(vm, 50), percentile(host, 50), "ms",
                better="lower"),
            Row("from B: to the VM on A vs to host A, p95", percentile(vm, 95), percentile(host, 95), "ms",
                better="lower")]
    return rows, {"mode": mode, "count": count, "route": route,
                  "routed_vs_local_p50": percentile(vm, 50) / percentile(local, 50),
                  "vm_vs_host_p50": percentile(vm, 50) / percentile(host, 50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["auto", "vxlan"], default="auto")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows, extra = run(args.mode, args.count)
    print_table(f"bench/vmnet: TCP connect times, {args.count} each ({args.mode} routes)",
                "ours: B -> VM on A", "peer", rows, json_out=args.output == "json")
    if args.output == "table":
        print(f"B's VM routes: {extra['route']}")
        print(f"routed / from its own host at p50: {extra['routed_vs_local_p50']:.2f}x; "
              f"VM / host-to-host at p50: {extra['vm_vs_host_p50']:.2f}x (target within 1.5x)")
    else:
        print(json.dumps(extra))


if __name__ == "__main__":
    main()
