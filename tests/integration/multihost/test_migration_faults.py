"""SIGKILL mid-migration on the installed three-host cluster (`cluster3`): the source node's
`dvp agent`, the target node's `dvp agent`, and `dvp server` on the master, each killed (every
process of the service, as a crash or the OOM killer would) while a VMOP Migrate of a running VM
moves it from one worker to the other, then started again the way the lab's init script does.
Afterwards exactly one domain of the VM runs across the three hosts, on the node its status
names; the VM is Running; the VMOP ended Completed or Failed saying why; the other worker keeps
no domain, volume file or instance directory of it; the guest never rebooted (docs/live-migration.md).

One small guest (tests/support/clustervm.py, a module fixture) serves all the cases, each moving it from where
it is to the other worker. To kill mid-way, the source's libvirt migration speed is cut to
1 MiB/s before the VMOP (`virsh migrate-setspeed`, which libvirt applies to the RAM and the disk
copy), the kill waits until the target's paused incoming domain exists, and the speed is raised
again after it, so each move lasts only as long as the case needs:
- source agent, then the VMOP deleted: the agent killed and back while libvirtd still migrates
  (too slowly to converge); the restarted handler must abort the job it did not start when the
  request is withdrawn: the VM stays on the source, the target's copy goes;
- source agent: killed and started again while libvirtd still migrates (the restarted handler
  must watch that job, then find the domain on the target and hand the instance over);
- target agent and `dvp server`: killed, the migration let finish meanwhile, then started again
  (the source handler's status writes fail while the API server is down);
- source agent killed, the VMOP deleted while it is down, the migration let complete, the agent
  started (a test of its own): only status.migration is left; the one running copy (on the
  target) is kept and the instance handed over, never a second copy started on the source.
Last, `dvp node drain` of the guest's node with a second VM there whose CD-ROM is a local ISO:
the drain fails naming that VM and why, and the guest still moves live.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from installer import hostlayout
from tests.services import polling
from tests.support.clusterlab import Cluster
from tests.support.clustervm import (
    VIRSH,
    V,
    apply,
    domain_states,
    dvp_on,
    get_vm,
    guest,
    guest_uptime,
    guest_vm,
    image_server,
    leftovers,
    vm_status,
)
from tests.support.upgradelab import LabNode

pytestmark = pytest.mark.integration
eventually = functools.partial(polling.eventually, timeout=300, interval=0.5)
NS, VM, IMAGE_PORT = "w15-faults", "victim", 18081
DOMAIN = f"dvp-{NS}_{VM}"
SLOW_MIB = 1
"""Migration speed (MiB/s) while the case waits to kill: the RAM of a 128 MiB guest then takes
about a minute, so the kill lands mid-way; raised to FAST_MIB right after it."""
FAST_MIB = 100000
ISO_VM = "with-iso"
LOCAL_ISO = f"{hostlayout.STATE_DIR}/w15-local.iso"


def kill_service(cluster: Cluster, node: LabNode) -> None:
    """SIGKILL every process of the host's dvp service (the PID file's process and its children).
    A child may end on its own between the listing and the kill (the agent runs short commands
    while it migrates): only the service's own process must be there to be killed."""
    name: hostlayout.ServiceName = "dvp-server" if node.role == "master" else "dvp-agent"
    pid_file = hostlayout.service_paths(name).pid_file
    done = node.sh(f"p=$(cat {pid_file}); c=$(ps -o pid= --ppid $p); kill -9 $p || exit 1; "
                   f"for x in $c; do kill -9 $x 2>/dev/null; done; exit 0", check=False)
    assert done.returncode == 0, done.stderr
    eventually(lambda: cluster.service(node, "status").returncode != 0, timeout=10, what=f"{name} on {node.name} gone")


def starts(cluster: Cluster, node: LabNode) -> int:
    """How often the host's dvp service has said it is ready (its log survives restarts)."""
    return len(re.findall(r"dvp agent: node \S+ ready|dvp server: all components ready", cluster.log(node)))


def restart(cluster: Cluster, node: LabNode) -> None:
    """Start the killed service again, as the lab's init script does, and wait until it is ready."""
    before = starts(cluster, node)
    started = cluster.service(node, "start")
    assert started.returncode == 0, started.stderr
    eventually(lambda: starts(cluster, node) > before, timeout=120, what=f"{node.name}'s service ready again")


def set_speed(node: LabNode, mib: int) -> None:
    node.sh(f"{VIRSH} migrate-setspeed {DOMAIN} {mib}")


def migrate(cluster: Cluster, name: str, target: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineOperation",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"type": "Migrate", "virtualMachineName": VM,
                 "migrate": {"nodeSelector": {"kubernetes.io/hostname": target}}}}))


def vmop(cluster: Cluster, name: str) -> dict[str, Any]:
    done = cluster.kubectl("get", "vmop", name, "-n", NS, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def running_on(cluster: Cluster) -> dict[str, list[str]]:
    """Node name -> states of the VM's domain there (only nodes that have one)."""
    return {n.node: s for n in cluster.nodes if (s := domain_states(n, DOMAIN))}


def settled(cluster: Cluster) -> Callable[[], dict[str, list[str]] | None]:
    """libvirt is done: one running domain, nothing else defined, no job on it."""
    def check() -> dict[str, list[str]] | None:
        where = running_on(cluster)
        if list(where.values()) != [["running"]]:
            return None
        node = next(n for n in cluster.nodes if n.node in where)
        job = node.sh(f"{VIRSH} domjobinfo {DOMAIN}", check=False).stdout
        return where if re.search(r"Job type:\s+None", job) else None
    return check


def instance_migration(cluster: Cluster) -> dict[str, Any]:
    """The VM's instance's status.migration: the source node handler's record of the move."""
    done = cluster.kubectl("get", "internalvirtualmachineinstances.internal.virtualization.deckhouse.io", VM, "-n", NS,
                           "-o", "json", check=False)
    return dict((json.loads(done.stdout).get("status") or {}).get("migration") or {}) if done.returncode == 0 else {}


def uids(cluster: Cluster) -> list[str]:
    """The instance's uid (its domain's UUID and instance directory) and its volumes' uids (in their file names)."""
    found = [cluster.kubectl_json("get", "internalvirtualmachineinstances.internal.virtualization.deckhouse.io",
                                  VM, "-n", NS)["metadata"]["uid"]]
    for disk in ("root", "data"):
        found.append(cluster.kubectl_json("get", "internalvirtualdiskvolumes.internal.virtualization.deckhouse.io",
                                          f"{VM}-{disk}", "-n", NS)["metadata"]["uid"])
    return found


@dataclass
class Victim:
    """The guest the cases share: where to reach it, what its disk holds, its uids, its last uptime."""
    url: str
    ip: str
    token: str
    ids: list[str]
    up: float


@pytest.fixture(scope="module")
def victim(cluster3: Cluster) -> Iterator[Victim]:
    t_start = time.monotonic()
    master, (a, _) = cluster3.master, cluster3.workers
    with image_server(master, IMAGE_PORT) as url:
        try:
            apply(cluster3, guest_vm(NS, VM, url, prefer=a.node, memory="128Mi"))
            st = eventually(lambda: (s := vm_status(cluster3, NS, VM)).get("phase") == "Running" and
                            s.get("ipAddress") and s, timeout=600)
            ip = str(st["ipAddress"])
            token = eventually(lambda: (t := guest(cluster3, ip, "/disk.txt")) and t.startswith("tok=") and t)
            print(f"\nVM {VM} {ip} on {st['nodeName']}; ready after {time.monotonic() - t_start:.1f} s")
            if st["nodeName"] not in {n.node for n in cluster3.workers}:  # the preference lost to the spread
                migrate(cluster3, f"{VM}-to-worker", a.node)
                eventually(lambda: vmop(cluster3, f"{VM}-to-worker").get("status", {}).get("phase") == "Completed")
            up = guest_uptime(cluster3, NS, VM, ip, timeout=300)
            yield Victim(url=url, ip=ip, token=token, ids=uids(cluster3), up=up)
        finally:
            for node in cluster3.nodes:  # a case that failed between a kill and its restart: the next modules need it
                if cluster3.service(node, "status").returncode != 0:
                    print(f"{node.name}'s dvp service was left stopped: starting it")
                    cluster3.service(node, "start")
            cluster3.kubectl("delete", "vm", VM, ISO_VM, "-n", NS, "--wait=false", check=False)
            eventually(lambda: not get_vm(cluster3, NS, VM) and not get_vm(cluster3, NS, ISO_VM), timeout=180)
            cluster3.kubectl("delete", "cvi", f"{NS}-iso", "--wait=false", check=False)
            for n in cluster3.workers:
                n.sh(f"rm -f {LOCAL_ISO}", check=False)
            cluster3.kubectl("delete", "namespace", NS, "--wait=false", check=False)
            cluster3.kubectl("delete", "cvi", f"{NS}-guest", "--wait=false", check=False)
            print(f"module took {time.monotonic() - t_start:.1f} s")


def test_sigkill_mid_migration_leaves_exactly_one_domain(cluster3: Cluster, victim: Victim) -> None:
    v = victim
    v.up = _cancel_after_restart(cluster3, v.ip, v.up, v.ids)
    for case in ("source agent", "target agent", "dvp server"):
        v.up = _kill_case(cluster3, case, v.ip, v.token, v.up, v.ids)
    _drain_with_local_iso(cluster3, v.url, v.ip, v.up)


def test_vmop_deleted_while_source_agent_down_keeps_the_one_moved_domain(cluster3: Cluster, victim: Victim) -> None:
    """The source agent stopped mid-migration, the VMOP deleted while it is down (nothing is left
    to withdraw the job from), the migration let complete: the returning handler finds only
    status.migration, keeps the copy that runs (on the target) and hands the instance over; it
    never starts a second copy here."""
    t0 = time.monotonic()
    _onto_a_worker(cluster3)  # the drain before may have evicted it to the master
    op = f"{VM}-withdrawn"
    src, dst = _mid_migration(cluster3, op)
    kill_service(cluster3, src)
    try:
        cluster3.kubectl("delete", "vmop", op, "-n", NS, "--wait=false")
        eventually(lambda: not vmop(cluster3, op), timeout=60, what="the VMOP gone while the source agent is down")
        set_speed(src, FAST_MIB)
        eventually(lambda: running_on(cluster3) == {dst.node: ["running"]}, timeout=120, what="the move completed")
        restart(cluster3, src)
    finally:
        if cluster3.service(src, "status").returncode != 0:
            cluster3.service(src, "start")
    state = eventually(lambda: (s := vm_status(cluster3, NS, VM).get("migrationState") or {}).get("endTimestamp")
                       and s, timeout=120)
    st = eventually(lambda: (s := vm_status(cluster3, NS, VM)).get("nodeName") == dst.node and s, timeout=60)
    time.sleep(3)  # a second copy would be started by the source's next reconcile: give it the chance
    where = running_on(cluster3)
    print(f"\nsource agent down, VMOP deleted, move completed: {state.get('reason')}: {state.get('message')}; "
          f"runs on {where}; {time.monotonic() - t0:.1f} s")
    assert where == {st["nodeName"]: ["running"]}, (where, st["nodeName"])
    assert state["result"] == "Succeeded" and state["reason"] == "CompletedAfterWithdrawal", state
    assert_clean(src, victim.ids)
    up = guest_uptime(cluster3, NS, VM, victim.ip)
    assert up > victim.up, (victim.up, up)
    assert guest(cluster3, victim.ip, "/disk.txt") == victim.token
    victim.up = up


def assert_clean(node: LabNode, ids: list[str]) -> None:
    """Within moments, the host keeps no file of the VM (and no domain: checked by the caller)."""
    left = leftovers(node, ids)
    deadline = time.monotonic() + 30
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = leftovers(node, ids)
    assert not left, f"{node.node} keeps {left}"


def _onto_a_worker(cluster: Cluster) -> None:
    """Move the VM to a worker (a plain, completed VMOP Migrate) unless it runs on one."""
    here = str(vm_status(cluster, NS, VM)["nodeName"])
    if any(n.node == here for n in cluster.workers):
        return
    op = f"{VM}-to-worker"
    migrate(cluster, op, cluster.workers[0].node)
    eventually(lambda: (vmop(cluster, op).get("status") or {}).get("phase") == "Completed", timeout=180,
               what=f"the VM moved from {here} to a worker")
    cluster.kubectl("delete", "vmop", op, "-n", NS)


def _mid_migration(cluster: Cluster, op: str) -> tuple[LabNode, LabNode]:
    """Start VMOP `op` moving the VM to the other worker, slowed down; return (source, target)
    once the target's paused incoming domain exists."""
    # the VM's status and libvirt agree first (the last move's hand-over may still be under way)
    here = str(eventually(lambda: (h := vm_status(cluster, NS, VM).get("nodeName")) and running_on(cluster) == {
        h: ["running"]} and h, timeout=60, what="the VM settled on one node"))
    src = next(n for n in cluster.workers if n.node == here)
    dst = next(n for n in cluster.workers if n.node != here)
    set_speed(src, SLOW_MIB)
    migrate(cluster, op, dst.node)
    seen: list[object] = []

    def started() -> bool:
        # what the recovery after a kill starts from: the source handler's own record (the
        # instance's status.migration, Migrating) while libvirt migrates (the target's domain paused)
        states, record = domain_states(dst, DOMAIN), instance_migration(cluster)
        seen[:] = [states, record, (vmop(cluster, op).get("status") or {}).get("phase"),
                   vm_status(cluster, NS, VM).get("migrationState")]
        return states == ["paused"] and record.get("phase") == "Migrating" and record.get("targetNode") == dst.node

    try:
        eventually(started, timeout=120, what=f"{op} under way (target's domain paused, the instance Migrating)")
    except AssertionError as exc:
        logs = "".join(f"\n--- {n.name}'s service log, its lines about the VM or migrations:\n" + "\n".join(
            [line for line in cluster.log(n).splitlines() if VM in line or "migrat" in line][-60:])
            for n in (src, dst, cluster.master))
        inst = cluster.kubectl("get", "internalvirtualmachineinstances.internal.virtualization.deckhouse.io", VM,
                               "-n", NS, "-o", "json", "--show-managed-fields", check=False).stdout
        logs += f"\n--- the instance:\n{inst}"
        raise AssertionError(f"{exc}; last seen: target's domains, instance status.migration, VMOP phase, VM "
                             f"migrationState = {seen}{logs}") from exc
    return src, dst


def _cancel_after_restart(cluster: Cluster, ip: str, up0: float, ids: list[str]) -> float:
    """The source agent killed and back while libvirtd still migrates (too slowly to ever
    converge), then the VMOP deleted: the restarted handler must abort the job it did not start,
    keep the VM on the source and remove the target's copy."""
    t0 = time.monotonic()
    op = f"{VM}-cancel"
    src, dst = _mid_migration(cluster, op)
    kill_service(cluster, src)
    try:
        restart(cluster, src)
    finally:
        if cluster.service(src, "status").returncode != 0:
            cluster.service(src, "start")
    cluster.kubectl("delete", "vmop", op, "-n", NS, "--wait=false")
    eventually(settled(cluster), timeout=60, what="the job aborted")
    set_speed(src, FAST_MIB)
    eventually(lambda: not vmop(cluster, op), timeout=60, what="the VMOP's finalizer removed")
    state = eventually(lambda: (s := vm_status(cluster, NS, VM).get("migrationState") or {}).get("endTimestamp") and s,
                       timeout=60)
    where = running_on(cluster)
    print(f"\nsource agent killed, VMOP deleted: {state.get('reason')}: {state.get('message')}; runs on {where}; "
          f"{time.monotonic() - t0:.1f} s")
    assert where == {src.node: ["running"]}, where
    assert state["result"] == "Failed" and state["reason"] == "Cancelled", state
    assert vm_status(cluster, NS, VM)["nodeName"] == src.node
    assert_clean(dst, ids)
    up = guest_uptime(cluster, NS, VM, ip)
    assert up > up0, (up0, up)
    return up


def _kill_case(cluster: Cluster, case: str, ip: str, token: str, up0: float, ids: list[str]) -> float:
    t0 = time.monotonic()
    op = f"{VM}-kill-{case.split()[0]}"
    src, dst = _mid_migration(cluster, op)
    here = src.node
    victim = {"source agent": src, "target agent": dst, "dvp server": cluster.master}[case]
    kill_service(cluster, victim)
    t_kill = time.monotonic()
    try:
        if case == "source agent":  # back while libvirtd still migrates: it must wait for the job
            restart(cluster, victim)
            set_speed(src, FAST_MIB)
            eventually(settled(cluster), timeout=120)
        else:  # the migration ends while the killed process is away
            set_speed(src, FAST_MIB)
            eventually(settled(cluster), timeout=120)
            restart(cluster, victim)
    finally:
        if cluster.service(victim, "status").returncode != 0:
            cluster.service(victim, "start")
    cluster.wait_ready(timeout=180)
    done = eventually(lambda: (o := vmop(cluster, op)).get("status", {}).get("phase") in ("Completed", "Failed") and o,
                      timeout=180)
    st = eventually(lambda: (s := vm_status(cluster, NS, VM)).get("phase") == "Running" and s, timeout=120)
    where = running_on(cluster)
    completed = next(c for c in done["status"]["conditions"] if c["type"] == "Completed")
    print(f"{case} killed {here} -> {dst.node}: VMOP {done['status']['phase']} ({completed.get('message')}); "
          f"runs on {where}; {t_kill - t0:.1f} s to the kill, {time.monotonic() - t0:.1f} s in all")
    # exactly one domain, running, on the node the status names; the VMOP says what happened
    assert where == {st["nodeName"]: ["running"]}, (where, st["nodeName"])
    assert completed.get("message"), done["status"]
    state = st.get("migrationState") or {}
    assert state.get("result") in ("Succeeded", "Failed") and state.get("reason"), state
    assert (state["result"] == "Succeeded") == (done["status"]["phase"] == "Completed") == (st["nodeName"] == dst.node), \
        (state, done["status"]["phase"], st["nodeName"])
    # nothing of it left on the other worker
    other = src if st["nodeName"] == dst.node else dst
    assert_clean(other, ids)
    # the guest never rebooted and its disk came along
    up = guest_uptime(cluster, NS, VM, ip)
    assert up > up0, (up0, up)
    assert guest(cluster, ip, "/disk.txt") == token
    return up


def _drain_with_local_iso(cluster: Cluster, url: str, ip: str, up0: float) -> None:
    """`dvp node drain` of the VM's node while a second VM there has a CD-ROM from a local ISO
    file: the drain fails (non-zero) naming that VM and why; the guest VM still moves live.

    A local ISO is an image reference `file:///path` on the node, which only a host without
    DVCR makes; on the installed cluster the test writes it into a Ready image's status (admin,
    status subresource) as such a host would: cdrom, and the file's URL."""
    t0 = time.monotonic()
    here = str(vm_status(cluster, NS, VM)["nodeName"])
    node = next(n for n in cluster.workers if n.node == here)
    node.sh(f"head -c 1048576 /dev/zero > {LOCAL_ISO}")
    apply(cluster, [{"apiVersion": V, "kind": "ClusterVirtualImage", "metadata": {"name": f"{NS}-iso"},
                     "spec": {"dataSource": {"type": "HTTP", "http": {"url": url}}}}])
    eventually(lambda: cluster.kubectl_json("get", "cvi", f"{NS}-iso").get("status", {}).get("phase") == "Ready")
    cluster.kubectl("patch", "cvi", f"{NS}-iso", "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"cdrom": True, "target": {"registryURL": f"file://{LOCAL_ISO}"}}}))
    apply(cluster, [
        {"apiVersion": V, "kind": "VirtualDisk", "metadata": {"name": f"{ISO_VM}-root", "namespace": NS},
         "spec": {"persistentVolumeClaim": {"size": "64Mi"}}},
        {"apiVersion": V, "kind": "VirtualMachine", "metadata": {"name": ISO_VM, "namespace": NS},
         "spec": {"virtualMachineClassName": "generic", "runPolicy": "AlwaysOn",
                  "cpu": {"cores": 1, "coreFraction": "5%"}, "memory": {"size": "128Mi"},
                  "terminationGracePeriodSeconds": 1,  # no OS answers the power button: destroy at once
                  "nodeSelector": {"kubernetes.io/hostname": here},
                  "blockDeviceRefs": [{"kind": "VirtualDisk", "name": f"{ISO_VM}-root"},
                                      {"kind": "ClusterVirtualImage", "name": f"{NS}-iso"}]}}])

    def not_migratable() -> dict[str, Any] | None:
        st = vm_status(cluster, NS, ISO_VM)
        cond: dict[str, Any] = next((c for c in st.get("conditions") or [] if c["type"] == "Migratable"), {})
        return cond if st.get("phase") == "Running" and cond.get("status") == "False" else None
    cond = eventually(not_migratable, timeout=180)
    assert "local ISO" in cond["message"] and LOCAL_ISO in cond["message"], cond
    t1 = time.monotonic()
    try:
        drained = dvp_on(cluster.master, "node", "drain", here, "-o", "json", "--timeout", "180")
    finally:
        dvp_on(cluster.master, "node", "uncordon", here)
    result = json.loads(drained.stdout)
    vms = {v["name"]: v for v in result["vms"] if v["namespace"] == NS}
    print(f"dvp node drain {here} with a local ISO VM: exit {drained.returncode} in {time.monotonic() - t1:.1f} s: "
          f"{vms}; {time.monotonic() - t0:.1f} s in all")
    assert drained.returncode != 0 and not result["ok"], drained.stdout
    assert vms[ISO_VM]["phase"] == "Failed" and "local ISO" in vms[ISO_VM]["message"], vms[ISO_VM]
    assert vms[VM]["phase"] == "Completed" and vms[VM]["action"] == "Evict", vms[VM]
    moved = vm_status(cluster, NS, VM)
    assert moved["nodeName"] != here and vms[VM]["target"] == moved["nodeName"], moved
    assert vm_status(cluster, NS, ISO_VM)["nodeName"] == here  # not moved, not stopped
    up = guest_uptime(cluster, NS, VM, ip)
    assert up > up0, (up0, up)
