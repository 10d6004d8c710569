"""Where the time of `bench/e2e --hosts N` goes: per VM, when each step of apply -> Running was
first seen, from watches on the VirtualMachines and their internal instances (the bench's own
clock, so steps of different components compare), plus when each domain's QEMU started (the
`starting up` line of its libvirt log on its host).

Steps, in the order they happen:
  created   the VirtualMachine exists (`kubectl apply` creates the objects one after another)
  ip        VM status.ipAddress set (the address claim Bound)
  placed    VM status.nodeName set (the scheduler's decision written)
  instance  the InternalVirtualMachineInstance exists (written by the VM controller)
  qemu      QEMU spawned for the domain (libvirt's log on the node)
  inst_run  instance status.phase Running (written by the node handler after the start)
  running   VM status.phase Running (the VM controller copied it from the instance)

`report()` prints, per step, p50 and p95 of the time since the apply, and of each step's gap from
the one before: the largest gap is the serial wait to cut first.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from bench.report import percentile
from controlplane.api.resources import INSTANCES, VIRTUAL_MACHINES
from controlplane.common.kube.client import KubeClient, Resource

STEPS = ("created", "ip", "placed", "instance", "qemu", "inst_run", "running")
_STARTING = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\+0000: starting up", re.M)


def _vm_steps(obj: dict[str, Any]) -> list[str]:
    st = obj.get("status") or {}
    return ["created", *(s for s, ok in (("ip", st.get("ipAddress")), ("placed", st.get("nodeName")),
                            ("running", st.get("phase") == "Running")) if ok)]


def _instance_steps(obj: dict[str, Any]) -> list[str]:
    return ["instance", *(["inst_run"] if (obj.get("status") or {}).get("phase") == "Running" else [])]


class Timeline:
    """First wall-clock time each (VM name, step) was seen; watch threads, one per kind."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.seen: dict[str, dict[str, float]] = {}
        self.lock = threading.Lock()
        for res, steps in ((VIRTUAL_MACHINES, _vm_steps), (INSTANCES, _instance_steps)):
            threading.Thread(target=self._run, args=(res, steps), daemon=True).start()

    def _run(self, res: Resource, steps: Callable[[dict[str, Any]], list[str]]) -> None:
        while True:
            try:
                for event in self.kube.watch(res, "default", timeout_seconds=600, bookmarks=False):
                    if event.get("type") == "DELETED":
                        continue
                    self.note(event["object"]["metadata"]["name"], steps(event["object"]), time.time())
            except Exception:  # noqa: BLE001 - reconnect; the bench fails by its own timeout
                time.sleep(0.2)

    def note(self, name: str, steps: Iterable[str], when: float) -> None:
        with self.lock:
            got = self.seen.setdefault(name, {})
            for step in steps:
                got.setdefault(step, when)

    def forget(self, names: Iterable[str]) -> None:
        with self.lock:
            for name in names:
                self.seen.pop(name, None)

    def note_qemu_log(self, name: str, log_text: str) -> None:
        """The last `starting up` line of a domain's libvirt log (UTC)."""
        found = _STARTING.findall(log_text)
        if found:
            when = dt.datetime.strptime(found[-1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC).timestamp()
            self.note(name, ["qemu"], when)


def report(timeline: Timeline, names: list[str], t0: float) -> list[str]:
    """Lines: per step, p50/p95 since the apply and since the step before (seconds)."""
    lines = [f"{'step':<10} {'since apply p50':>16} {'p95':>7} {'gap p50':>9} {'p95':>7}  (n)"]
    with timeline.lock:
        rows = {n: dict(timeline.seen.get(n, {})) for n in names}
    before = None
    for step in STEPS:
        since = [r[step] - t0 for r in rows.values() if step in r]
        gaps = [r[step] - r[before] for r in rows.values() if step in r and before in r] if before else since
        if since:
            lines.append(f"{step:<10} {percentile(since, 50):16.2f} {percentile(since, 95):7.2f} "
                         f"{percentile(gaps, 50):9.2f} {percentile(gaps, 95):7.2f}  ({len(since)})")
            before = step
    first = sorted((r.get("running", 0.0) - t0, n) for n, r in rows.items())
    lines.append("order Running: " + ", ".join(f"{n}@{t:.1f}" for t, n in first))
    return lines
