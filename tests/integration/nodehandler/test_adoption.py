"""Killing `dvp agent` (-9) leaves VMs running, and a new agent adopts them: same domains, same
QEMU processes, same guest boots, no duplicates; work asked for while it was down (a Restart)
and work it was in the middle of (a graceful stop with a deadline) is finished by the new one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import libvirt
import pytest

from controlplane.nodehandler.context import INSTANCES
from tests.integration.nodehandler.support import NodeEnv, instance
from tests.services.guests import console_exchange, guest_status

pytestmark = pytest.mark.integration
NS = "adoption"


@pytest.fixture(scope="module")
def vms(node_env: NodeEnv) -> Iterator[dict[str, tuple[str, str]]]:
    env = node_env
    if not env.agent.alive():
        env.agent.start()
    env.ensure_namespace(NS)
    out = {}
    for i, name in enumerate(("vm-k1", "vm-k2")):
        env.boot_volume(f"{name}-root", NS)
        ip = env.agent.guest_ip(50 + i)
        obj = env.create_instance(instance(name, env.node, namespace=NS, grace=20,
                                           disks=[{"name": "root", "volume": {"name": f"{name}-root"}}],
                                           nics=[{"name": "default", "mac": f"52:54:00:ad:00:0{i}", "ip": ip}]))
        out[name] = (obj["metadata"]["uid"], ip)
    for uid, _ in out.values():
        env.wait_marker(uid)
    yield out
    if not env.agent.alive():
        env.agent.start()
    for name in out:
        env.kube.delete_if_exists(INSTANCES, name, NS)


def _boot_id(ip: str) -> str:
    return guest_status(ip)["boot-id"][0]


def test_kill_9_keeps_vms_running_and_the_new_agent_adopts_them(
        node_env: NodeEnv, vms: dict[str, tuple[str, str]], libvirt_conn: libvirt.virConnect) -> None:
    env = node_env
    (uid1, ip1), (uid2, ip2) = vms["vm-k1"], vms["vm-k2"]
    before = {d.UUIDString(): d.ID() for d in env.agent.domains(libvirt_conn)}
    boots = {ip1: _boot_id(ip1), ip2: _boot_id(ip2)}
    started_at = env.get("vm-k1", NS)["status"]["startedAt"]
    uptime = float(guest_status(ip1)["uptime"][0])

    env.agent.kill()  # SIGKILL
    time.sleep(1.0)
    assert float(guest_status(ip1)["uptime"][0]) > uptime, "the VM keeps running without its agent"
    rid = env.power("vm-k2", "Restart", namespace=NS)  # asked for while no agent runs

    env.agent.start()
    st2 = env.wait_status("vm-k2", lambda s: s.get("handledPowerRequest") == rid and s.get("phase") == "Running",
                          namespace=NS, timeout=60)["status"]
    assert st2["phase"] == "Running"
    after = {d.UUIDString(): d.ID() for d in env.agent.domains(libvirt_conn)}
    assert sorted(after) == sorted(before), "one domain per instance: nothing duplicated, nothing lost"
    assert after[uid1] == before[uid1], "vm-k1's QEMU was not restarted"
    assert _boot_id(ip1) == boots[ip1]
    assert env.get("vm-k1", NS)["status"]["startedAt"] == started_at
    env.wait_marker(uid2, after=0)
    for _ in range(100):
        try:
            if _boot_id(ip2) != boots[ip2]:
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert _boot_id(ip2) != boots[ip2], "the Restart asked for while the agent was down was carried out"
    assert "adopted 2 domain(s)" in env.agent.log_text()


def test_a_graceful_stop_in_progress_survives_kill_9(
        node_env: NodeEnv, vms: dict[str, tuple[str, str]], libvirt_conn: libvirt.virConnect) -> None:
    env = node_env
    uid1, _ = vms["vm-k1"]
    dom = libvirt_conn.lookupByUUIDString(uid1)
    console_exchange(libvirt_conn, dom, "killall acpid; echo acpid-$((1+1))-gone", "acpid-2-gone")
    rid = env.power("vm-k1", "Stop", grace=4, namespace=NS)
    env.wait_status("vm-k1", lambda s: s.get("phase") == "Stopping", namespace=NS, timeout=10)
    env.agent.kill()
    assert dom.isActive(), "the guest ignores ACPI: only the deadline stops it"
    env.agent.start()
    st = env.wait_status("vm-k1", lambda s: s.get("handledPowerRequest") == rid, namespace=NS, timeout=30)["status"]
    assert st["phase"] == "Stopped" and st["stopReason"] == "PowerRequest"
    assert not dom.isActive()
