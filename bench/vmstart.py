"""bench/vmstart: how long the node handler takes to turn an instance into a running VM, against
the same domains started with plain `virsh create`, measured in the same run.

Against a real `dvp server`, a real `dvp agent` and the test libvirtd (software emulation), for 1
VM and for 10 VMs created at once (medians over --rounds rounds each), it measures from the moment an
InternalVirtualMachineInstance is POSTed (its volume provisioned beforehand) to
- the domain running: libvirt's STARTED lifecycle event, seen by this process;
- the guest's marker line (`DVP-GUEST-READY ...`) in the serial log: booted, DHCP done.
The peer: the very same domain XML the agent defined (same disks, seed, NIC with the same DHCP
binding; our domains force-stopped first), each started with `virsh create FILE`, timed from
the spawn of `virsh` to the same event and the same marker. Target: domain running within 1.2x
of plain virsh.

    python -m bench.vmstart [--rounds 3] [--many 10] [-o json]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import libvirt

from bench.peer_domain import peer_domain_xml
from bench.report import Row, print_table
from controlplane.common.kube.client import KubeClient
from controlplane.nodehandler.context import INSTANCES
from nodeimage.guest import ensure_image
from tests.integration.nodehandler.support import NodeEnv, instance, read_log_from, wait_for
from tests.services.apiserver import ApiServerProcess
from tests.services.guests import MARKER
from tests.services.libvirtd import LibvirtDaemons, domain_name_for
from tests.services.nodeagent import NodeAgentProcess

NS = "bench-vmstart"


class StartedEvents:
    """Times of libvirt STARTED events by domain UUID (libvirt's event loop runs in a thread)."""

    def __init__(self) -> None:
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=self._loop, daemon=True).start()
        self.times: dict[str, float] = {}
        self.conn = libvirt.open("qemu:///system")
        self.conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on, None)

    @staticmethod
    def _loop() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    def _on(self, _c: Any, dom: libvirt.virDomain, event: int, _detail: int, _o: Any) -> None:
        if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
            self.times.setdefault(dom.UUIDString(), time.monotonic())

    def uuid_of(self, name: str) -> str:
        return str(self.conn.lookupByName(name).UUIDString())


def _wait_markers(logs: dict[str, Path], timeout: float = 300) -> dict[str, float]:
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(logs):
        for key, path in logs.items():
            if key not in seen and MARKER.search(read_log_from(path, 0)):
                seen[key] = time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"markers seen for {len(seen)} of {len(logs)} VMs within {timeout:.0f}s")
        time.sleep(0.02)
    return seen


class Bench:
    def __init__(self, env: NodeEnv, events: StartedEvents, work: Path) -> None:
        self.env = env
        self.events = events
        self.work = work
        self.round = 0
        self.next_ip = 100  # every instance its own address: instances of earlier rounds still exist

    def ours(self, n: int) -> tuple[list[float], list[float], list[str]]:
        """Create n instances at once; (seconds to running, seconds to marker, names)."""
        self.round += 1
        env = self.env
        names = [f"r{self.round}-vm{i}" for i in range(n)]
        for name in names:
            env.create_volume(_volume(env, name))
        for name in names:
            env.volume_ready(f"{name}-root", NS)
        created: dict[str, float] = {}
        uids: dict[str, str] = {}
        first_ip, self.next_ip = self.next_ip, self.next_ip + n

        def create(i: int, name: str) -> None:
            body = instance(name, env.node, namespace=NS, grace=0,
                            disks=[{"name": "root", "volume": {"name": f"{name}-root"}}],
                            nics=[{"name": "default", "mac": f"52:54:00:be:{self.round:02x}:{i:02x}",
                                   "ip": env.agent.guest_ip(first_ip + i)}])
            created[name] = time.monotonic()
            uids[name] = env.create_instance(body)["metadata"]["uid"]

        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda a: create(*a), enumerate(names)))
        markers = _wait_markers({name: env.serial(uids[name]) for name in names})
        wait_for(lambda: all(uids[n] in self.events.times for n in names), timeout=30, what="STARTED events")
        running = [self.events.times[uids[n]] - created[n] for n in names]
        booted = [markers[n] - created[n] for n in names]
        return running, booted, [uids[n] for n in names]

    def peer(self, uids: list[str]) -> tuple[list[float], list[float]]:
        """Force-stop our domains, then start the same XML with `virsh create`, all at once."""
        conn = self.events.conn
        for uid in uids:
            dom = conn.lookupByUUIDString(uid)
            if dom.isActive():
                dom.destroy()
        files: dict[str, Path] = {}
        logs: dict[str, Path] = {}
        for i, uid in enumerate(uids):
            name = domain_name_for(f"peer-{self.round}-{i}")
            logs[name] = self.work / f"{name}.serial.log"
            files[name] = self.work / f"{name}.xml"
            files[name].write_text(peer_domain_xml(
                conn.lookupByUUIDString(uid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), name=name,
                serial_log=logs[name], vnc_socket=f"/run/dvp-tests/bench-{i}.sock"))
        spawned: dict[str, float] = {}

        def start(name: str) -> None:
            spawned[name] = time.monotonic()
            subprocess.run(["virsh", "-q", "-c", "qemu:///system", "create", str(files[name])], check=True,
                           capture_output=True)

        with ThreadPoolExecutor(len(files)) as pool:
            list(pool.map(start, files))
        markers = _wait_markers(logs)
        ids = {name: self.events.uuid_of(name) for name in files}
        wait_for(lambda: all(u in self.events.times for u in ids.values()), timeout=30, what="STARTED events")
        running = [self.events.times[ids[n]] - spawned[n] for n in files]
        booted = [markers[n] - spawned[n] for n in files]
        for name in files:
            conn.lookupByName(name).destroy()
        return running, booted

    def cleanup(self) -> None:
        """Delete this run's instances and wait until they are gone (their volumes stay)."""
        for obj in self.env.kube.list(INSTANCES, NS)["items"]:
            self.env.kube.delete_if_exists(INSTANCES, obj["metadata"]["name"], NS)
        wait_for(lambda: not self.env.kube.list(INSTANCES, NS)["items"], timeout=60, what="instances deleted")


def _volume(env: NodeEnv, name: str) -> dict[str, Any]:
    from tests.integration.nodehandler.support import volume

    return volume(f"{name}-root", env.node, "64Mi", image_ref=f"file://{env.image}", namespace=NS)


def run(rounds: int, many: int) -> list[Row]:
    daemons = LibvirtDaemons()
    daemons.acquire()
    events = StartedEvents()
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-vmstart-"))
    image = ensure_image("cloud")
    server = ApiServerProcess(work / "server")
    server.start()
    agent = NodeAgentProcess(server, work / "agent")
    conn = libvirt.open("qemu:///system")
    try:
        agent.start()
        env = NodeEnv(kube=KubeClient.from_kubeconfig(server.kubeconfig), agent=agent, image=image.qcow2)
        env.ensure_namespace(NS)
        bench = Bench(env, events, work)
        bench.peer(bench.ours(1)[2])  # warm-up: page cache, image cache, QEMU binary
        one: dict[str, list[float]] = {"run": [], "boot": [], "prun": [], "pboot": []}
        for _ in range(rounds):
            running, booted, uids = bench.ours(1)
            prunning, pbooted = bench.peer(uids)
            one["run"] += running
            one["boot"] += booted
            one["prun"] += prunning
            one["pboot"] += pbooted
        many_rounds: dict[str, list[list[float]]] = {"run": [], "boot": [], "prun": [], "pboot": []}
        for _ in range(rounds):
            m_run, m_boot, uids = bench.ours(many)
            p_run, p_boot = bench.peer(uids)
            bench.cleanup()
            for key, values in (("run", m_run), ("boot", m_boot), ("prun", p_run), ("pboot", p_boot)):
                many_rounds[key].append(values)
    finally:
        agent.teardown(conn)
        server.stop()
        conn.close()
        daemons.release()
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median

    def per_round(key: str, stat: Any) -> float:
        """The median over rounds of a per-round statistic (the median or the max of its VMs)."""
        return float(med([stat(values) for values in many_rounds[key]]))

    return [
        Row("1 VM: created -> domain running", med(one["run"]) * 1000, med(one["prun"]) * 1000, "ms", "lower"),
        Row("1 VM: created -> guest marker", med(one["boot"]), med(one["pboot"]), "s", "lower"),
        Row(f"{many} VMs at once: -> domain running, median", per_round("run", med) * 1000,
            per_round("prun", med) * 1000, "ms", "lower"),
        Row(f"{many} VMs at once: -> all domains running", per_round("run", max) * 1000,
            per_round("prun", max) * 1000, "ms", "lower"),
        Row(f"{many} VMs at once: -> guest marker, median", per_round("boot", med), per_round("pboot", med), "s",
            "lower"),
        Row(f"{many} VMs at once: -> all guest markers", per_round("boot", max), per_round("pboot", max), "s",
            "lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measurement (median over rounds)")
    parser.add_argument("--many", type=int, default=10, help="VMs created at once")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows = run(args.rounds, args.many)
    print_table("bench/vmstart: instance created -> VM running (software emulation)", "dvp agent",
                "virsh create (same XML)", rows, json_out=args.output == "json")
    if args.output == "table":
        for r in rows[:1] + rows[2:4]:
            print(f"{r.what}: {r.ours / r.peer:.2f}x of plain virsh (target < 1.2x)")  # type: ignore[operator]


if __name__ == "__main__":
    main()
