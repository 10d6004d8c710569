"""An instance's life through the node handler, on real libvirtd + QEMU (emulation).

Two VMs boot from volumes copied from the guest image: `vm-a` is the one whose power we turn,
`vm-b` reaches `vm-a` over the VM bridge (its user-data script fetches vm-a's page). Then, in
order: boot (marker with the cloud-init host name, the instance's IP by DHCP, HTTP from the
host), restart, stop/start through runState, force stop and Start through power requests, a
guest that powers itself off (held stopped), and a guest that ignores the ACPI button
(destroyed after the grace period). Status follows each step within seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import libvirt
import pytest

from controlplane.common.kube.client import EVENTS
from controlplane.nodehandler.context import INSTANCES
from tests.integration.nodehandler.support import NodeEnv, instance, read_log_from, wait_for
from tests.services.guests import POWEROFF, console_exchange, guest_status, http_get

pytestmark = pytest.mark.integration
NS = "lifecycle"


@dataclass
class VM:
    name: str
    uid: str
    ip: str
    mac: str


@pytest.fixture(scope="module")
def vms(node_env: NodeEnv) -> Iterator[dict[str, VM]]:
    env = node_env
    if not env.agent.alive():
        env.agent.start()
    env.ensure_namespace(NS)
    a_ip, b_ip = env.agent.guest_ip(20), env.agent.guest_ip(21)
    peer_script = (
        "#!/bin/sh\n"  # (busybox wget -T crashes in this static build)
        f"for i in $(seq 1 90); do wget -q -O /tmp/peer http://{a_ip}/ && "
        "{ echo \"PEER-SAW $(cat /tmp/peer)\"; exit 0; }; sleep 1; done\necho PEER-FAILED\n"
    )
    out = {}
    for name, ip, mac, user_data in (("vm-a", a_ip, "52:54:00:1c:00:0a", None),
                                     ("vm-b", b_ip, "52:54:00:1c:00:0b", peer_script)):
        env.boot_volume(f"{name}-root", NS)
        obj = env.create_instance(instance(
            name, env.node, namespace=NS, hostname=f"{name}-host", user_data=user_data, grace=20,
            disks=[{"name": "root", "volume": {"name": f"{name}-root"}}],
            nics=[{"name": "default", "mac": mac, "ip": ip}]))
        out[name] = VM(name, obj["metadata"]["uid"], ip, mac)
    yield out
    for name in out:
        env.kube.delete_if_exists(INSTANCES, name, NS)


def _boot_id(ip: str) -> str:
    return guest_status(ip)["boot-id"][0]


def test_boot_marker_hostname_dhcp_ip_and_http(node_env: NodeEnv, vms: dict[str, VM],
                                               libvirt_conn: libvirt.virConnect) -> None:
    env, a = node_env, vms["vm-a"]
    marker = env.wait_marker(a.uid)
    assert (marker.hostname, marker.ip, marker.instance_id) == ("vm-a-host", a.ip, a.uid)
    assert http_get(a.ip, "/").strip() == marker.line
    st = env.wait_status(a.name, lambda s: bool((s.get("interfaces") or [{}])[0].get("ipAddress")),
                         namespace=NS)["status"]
    assert st["phase"] == "Running" and st["domainState"] == "Running"
    assert st["interfaces"] == [{"name": "default", "mac": a.mac, "ipAddress": a.ip, "ipAddresses": [a.ip]}]
    assert st["emulation"]["domainType"] == "qemu" and st["emulation"]["reason"] == "PVMOnly"
    assert st["startedAt"] and st["nodeName"] == env.node
    # started like `virsh create`, then defined once Running was written: the domain outlives a stop
    assert libvirt_conn.lookupByUUIDString(a.uid).isPersistent()
    running = next(c for c in st["conditions"] if c["type"] == "Running")
    assert running["status"] == "True"


def test_vms_reach_each_other_over_the_bridge(node_env: NodeEnv, vms: dict[str, VM]) -> None:
    env, a, b = node_env, vms["vm-a"], vms["vm-b"]
    env.wait_marker(b.uid)
    line = env.wait_marker(a.uid).line

    def saw() -> str | None:
        text = read_log_from(env.serial(b.uid), 0)
        assert "PEER-FAILED" not in text
        # the script's output may follow the shell prompt on the same line
        return next((ln[ln.index("PEER-SAW"):] for ln in text.splitlines() if "PEER-SAW" in ln), None)
    deadline = time.monotonic() + 60
    while (found := saw()) is None and time.monotonic() < deadline:
        time.sleep(0.3)
    assert found == f"PEER-SAW {line}"


def test_restart_boots_again_and_is_acknowledged(node_env: NodeEnv, vms: dict[str, VM]) -> None:
    env, a = node_env, vms["vm-a"]
    env.wait_marker(a.uid)
    first = _boot_id(a.ip)
    offset = env.serial_size(a.uid)
    rid = env.power(a.name, "Restart", namespace=NS)
    st = env.wait_status(a.name, lambda s: s.get("handledPowerRequest") == rid, namespace=NS, timeout=60)["status"]
    assert st["phase"] == "Running" and "pendingPowerRequest" not in st
    assert POWEROFF.search(read_log_from(env.serial(a.uid), offset)), "a graceful restart presses the power button"
    env.wait_marker(a.uid, after=offset)
    assert _boot_id(a.ip) != first


def test_run_state_stopped_shuts_down_gracefully_and_running_starts(node_env: NodeEnv, vms: dict[str, VM]) -> None:
    env, a = node_env, vms["vm-a"]
    env.wait_marker(a.uid)
    offset = env.serial_size(a.uid)
    env.kube.patch(INSTANCES, a.name, {"spec": {"runState": "Stopped"}}, NS)
    st = env.wait_phase(a.name, "Stopped", namespace=NS, timeout=30)["status"]
    assert st["domainState"] == "Shutoff" and st["stopReason"] == "Requested"
    assert "startedAt" not in st and st["interfaces"] == []
    assert POWEROFF.search(read_log_from(env.serial(a.uid), offset)), "the guest powered off by itself (ACPI)"
    offset = env.serial_size(a.uid)
    env.kube.patch(INSTANCES, a.name, {"spec": {"runState": "Running"}}, NS)
    env.wait_phase(a.name, "Running", namespace=NS, timeout=30)
    assert env.wait_marker(a.uid, after=offset).ip == a.ip


def test_force_stop_destroys_at_once_and_start_request_boots(node_env: NodeEnv, vms: dict[str, VM]) -> None:
    env, a = node_env, vms["vm-a"]
    env.wait_marker(a.uid)
    offset = env.serial_size(a.uid)
    started = time.monotonic()
    rid = env.power(a.name, "Stop", force=True, namespace=NS)
    st = env.wait_status(a.name, lambda s: s.get("handledPowerRequest") == rid and s.get("phase") == "Stopped",
                         namespace=NS, timeout=20)["status"]
    assert time.monotonic() - started < 10
    assert st["stopReason"] == "PowerRequest"
    assert not POWEROFF.search(read_log_from(env.serial(a.uid), offset)), "force stop must not ask the guest"
    time.sleep(1.5)
    assert env.get(a.name, NS)["status"]["phase"] == "Stopped", "a Stop request keeps the instance stopped"
    rid = env.power(a.name, "Start", namespace=NS)
    env.wait_status(a.name, lambda s: s.get("handledPowerRequest") == rid and s.get("phase") == "Running",
                    namespace=NS, timeout=20)
    env.wait_marker(a.uid, after=offset)


def test_guest_poweroff_holds_the_instance_stopped(node_env: NodeEnv, vms: dict[str, VM],
                                                   libvirt_conn: libvirt.virConnect) -> None:
    env, a = node_env, vms["vm-a"]
    env.wait_marker(a.uid)
    dom = libvirt_conn.lookupByUUIDString(a.uid)
    console_exchange(libvirt_conn, dom, "echo bye-$((40+2)); poweroff", "bye-42")
    st = env.wait_phase(a.name, "Stopped", namespace=NS, timeout=30)["status"]
    assert st["stopReason"] == "GuestShutdown"
    time.sleep(1.5)
    assert not dom.isActive(), "the handler must not restart a guest that powered itself off"
    offset = env.serial_size(a.uid)
    rid = env.power(a.name, "Start", namespace=NS)
    env.wait_status(a.name, lambda s: s.get("handledPowerRequest") == rid and s.get("phase") == "Running",
                    namespace=NS, timeout=20)
    env.wait_marker(a.uid, after=offset)


def test_guest_ignoring_acpi_is_destroyed_after_the_grace_period(node_env: NodeEnv, vms: dict[str, VM],
                                                                 libvirt_conn: libvirt.virConnect) -> None:
    env, a = node_env, vms["vm-a"]
    env.wait_marker(a.uid)
    dom = libvirt_conn.lookupByUUIDString(a.uid)
    console_exchange(libvirt_conn, dom, "killall acpid; echo acpid-$((1+1))-gone", "acpid-2-gone")
    offset = env.serial_size(a.uid)
    started = time.monotonic()
    rid = env.power(a.name, "Stop", grace=3, namespace=NS)
    st = env.wait_status(a.name, lambda s: s.get("phase") == "Stopping", namespace=NS, timeout=10)["status"]
    assert st["shutdownDeadline"] and st["pendingPowerRequest"] == rid
    st = env.wait_status(a.name, lambda s: s.get("handledPowerRequest") == rid, namespace=NS, timeout=20)["status"]
    assert 3 <= time.monotonic() - started < 15
    assert st["phase"] == "Stopped" and st["stopReason"] == "PowerRequest"
    assert not POWEROFF.search(read_log_from(env.serial(a.uid), offset))
    wanted, deadline = {"Started", "ShutdownRequested", "Destroyed"}, time.monotonic() + 10
    while True:  # the node handler writes events from a thread of its own, after the status
        events = env.kube.list(EVENTS, NS)["items"]
        reasons = {e["reason"] for e in events if e["involvedObject"].get("name") == a.name}
        if wanted <= reasons or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert wanted <= reasons


def test_an_address_freed_by_a_deleted_vm_goes_to_the_next_one(node_env: NodeEnv, vms: dict[str, VM]) -> None:
    env, b = node_env, vms["vm-b"]
    env.wait_marker(b.uid)
    assert b.mac in env.agent.network.leases()
    env.kube.delete(INSTANCES, b.name, NS)
    wait_for(lambda: env.kube.get_or_none(INSTANCES, b.name, NS) is None, timeout=30, what="vm-b deleted")
    assert b.mac not in env.agent.network.leases(), "the deleted VM's lease is released"
    obj = env.create_instance(instance(
        "vm-c", env.node, namespace=NS, hostname="vm-c-host", grace=5,
        disks=[{"name": "root", "volume": {"name": "vm-b-root"}}],
        nics=[{"name": "default", "mac": "52:54:00:1c:00:0c", "ip": b.ip}]))
    assert env.wait_marker(obj["metadata"]["uid"]).ip == b.ip
    env.kube.delete(INSTANCES, "vm-c", NS)
