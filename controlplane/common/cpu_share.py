"""The control plane's claim on the CPU when guests keep every core busy.

Kubernetes keeps the kubelet and the control plane responsive under load with cgroups
(kube-reserved, system-reserved); `dvp` may run where nothing sets such groups up (the lab
hosts, a host without systemd). There, on kernels that group CPU time by session (autogroup,
on by default in Debian's kernels; it applies to tasks in the root cgroup), every QEMU is a
session of its own, so the scheduler splits the CPU evenly between sessions: on a host with
30 booting guests, the whole control plane got 1/31 of it, and a `kubectl apply` of 30 VMs
took 10 s. A process's nice value alone does not help there (it only weighs threads within
their session), so `claim` sets both: the nice value of this process, inherited by what it
starts, and that of its session's group.

Under systemd the services and the guests live in cgroups of their own (system.slice and
machine.slice) and autogroup does not apply; there the nice value orders dvp's threads
among the other services only.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

AUTOGROUP = Path("/proc/self/autogroup")
DEFAULT_NICE = -10
"""Weight 9548 against a guest's 1024: about as much CPU as nine busy guests, when it has work."""
MIN_NICE, MAX_NICE = -20, 19


def claim(nice: int, *, autogroup: Path = AUTOGROUP, quiet: bool = False) -> list[str]:
    """Set this process's nice value and its session group's to `nice` (0 changes nothing).

    Returns what was set. A host that refuses (no CAP_SYS_NICE, no autogroup) gets one warning
    (a debug line with `quiet`, for the supervisor's components: it has warned already) and
    the process runs on at its old priority.
    """
    if nice == 0:
        return []
    done: list[str] = []
    refused: list[str] = []
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        done.append(f"nice {nice}")
    except OSError as exc:
        refused.append(f"the process's: {exc.strerror or exc}")
    if autogroup.exists():
        try:
            autogroup.write_text(f"{nice}\n")
            done.append(f"session group nice {nice}")
        except OSError as exc:
            refused.append(f"its session's CPU group's: {exc.strerror or exc}")
    if refused:
        log.log(logging.DEBUG if quiet else logging.WARNING,
                "CPU priority not raised to nice %d (%s): guests that keep every core busy may take the "
                "control plane's CPU time (run as root, or give --cpu-nice 0)", nice, "; ".join(refused))
    log.debug("CPU priority: %s", ", ".join(done) or "unchanged")
    return done
