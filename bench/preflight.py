"""Benchmark: the preflight checks on 20 test hosts (network namespaces running sshd).

ours: `run_preflight` as `dvp check` runs it — paramiko, hosts in parallel.
peer: the same checks (same code, same commands, same evaluation) run one host after another
      over OpenSSH's `ssh` client (a ControlMaster connection per host).
Target: 20 hosts in under 5 s. Needs root (network namespaces). `python -m bench.preflight`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.openssh import OpenSSHConnection
from installer.checks.catalog import check_names
from installer.checks.model import PreflightReport
from installer.checks.runner import run_preflight
from installer.config import InstallConfig, parse_config
from tests.support.hostlab import HostLab


def make_config(lab: HostLab, known_hosts: Path, *, parallelism: int) -> InstallConfig:
    doc = {
        "apiVersion": "dvp.deckhouse.io/v1alpha1",
        "kind": "InstallConfig",
        "ssh": {
            "privateKeyFiles": [str(lab.client_key)],
            "useAgent": False,
            "knownHostsFile": str(known_hosts),
            "parallelism": parallelism,
        },
        "hosts": [
            {"address": h.address, "name": h.name, "role": "master" if i == 0 else "worker"}
            for i, h in enumerate(lab.hosts)
        ],
        "virtualization": {"virtualMachineCIDRs": ["10.66.10.0/24"]},
        "checks": {"profile": "evaluation"},
    }
    return parse_config(yaml.safe_dump(doc), "bench.yaml", known_checks=check_names())


def verdicts(report: PreflightReport) -> dict[tuple[str, str], str]:
    return {(h.name, r.name): r.verdict for h in report.hosts for r in h.results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench.preflight needs root (network namespaces)", file=sys.stderr)
        return 2
    lab = HostLab()
    try:
        t = time.monotonic()
        for i in range(args.hosts):
            lab.add_host(f"b{i:02d}")
        print(f"started {args.hosts} sshd hosts in {time.monotonic() - t:.1f} s (setup, not measured)")
        known = lab.workdir / "known_hosts"
        known.write_text(lab.known_hosts())
        parallel = make_config(lab, known, parallelism=args.hosts)
        sequential = make_config(lab, known, parallelism=1)
        control = Path(tempfile.mkdtemp(prefix="dvp-bench-ssh-"))

        def ours() -> PreflightReport:
            return run_preflight(parallel).report

        def peer() -> PreflightReport:
            return run_preflight(sequential, connector=lambda target: OpenSSHConnection(target, control_dir=control)).report

        ours()  # warm-up: imports, page cache
        times: dict[str, list[float]] = {"ours": [], "peer": []}
        reports: dict[str, PreflightReport] = {}
        for _ in range(args.rounds):
            for name, fn in (("ours", ours), ("peer", peer)):
                t = time.monotonic()
                reports[name] = fn()
                times[name].append(time.monotonic() - t)
        if verdicts(reports["ours"]) != verdicts(reports["peer"]):
            diff = {k: (v, verdicts(reports["peer"]).get(k)) for k, v in verdicts(reports["ours"]).items()
                    if verdicts(reports["peer"]).get(k) != v}
            print(f"the two runs disagree: {diff}", file=sys.stderr)
            return 1
        connected = sum(1 for h in reports["ours"].hosts if h.result("connection.facts").verdict == "passed")
        assert connected == args.hosts, f"only {connected} of {args.hosts} hosts gathered facts"
        checks = sum(len(h.results) for h in reports["ours"].hosts)
        o, p = statistics.median(times["ours"]), statistics.median(times["peer"])
        print(f"\npreflight on {args.hosts} hosts, {checks} check results, median of {args.rounds} rounds")
        print(f"{'':44}{'wall time':>12}")
        print(f"{'ours: dvp check (paramiko, parallel)':44}{o:>10.2f} s   {[round(x, 2) for x in times['ours']]}")
        print(f"{'peer: OpenSSH ssh, one host after another':44}{p:>10.2f} s   {[round(x, 2) for x in times['peer']]}")
        print(f"{'ratio peer / ours':44}{p / o:>10.2f} x")
        print(f"target: {args.hosts} hosts under 5 s -> {'met' if o < 5 else 'NOT met'}")
        return 0
    finally:
        lab.close()
        if "control" in locals():
            shutil.rmtree(control, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
