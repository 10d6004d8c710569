"""Instance and Node status built from what is observed (pure builders)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import libvirt
import pytest

from controlplane.api.instance import parse_instance
from controlplane.common.clusterversions import label_value
from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.domains import DomainStatus
from controlplane.nodehandler.hypervisor import decide, gather_facts
from controlplane.nodehandler.instancestatus import Observed, build_status
from controlplane.nodehandler.node import node_labels, node_status

HOSTS = Path(__file__).parent / "hosts"
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
PVM = decide(gather_facts(HOSTS / "pvm-only"))
LIVE = ("<domain type='qemu'><devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0' "
        "state='disconnected'/></channel></devices></domain>")
RUNNING = DomainStatus("dvp-ns_vm", libvirt.VIR_DOMAIN_RUNNING, 1, LIVE)
OFF = DomainStatus("dvp-ns_vm", libvirt.VIR_DOMAIN_SHUTOFF, 1, LIVE)
SPEC = parse_instance({"metadata": {"name": "vm"}, "spec": {
    "nodeName": "n", "cpu": {"cores": 1}, "memory": {"size": "64Mi"},
    "nics": [{"name": "default", "mac": "52:54:00:00:00:01", "ip": "10.66.0.10"}]}})


def _status(dom: DomainStatus | None, obs: Observed, old: dict[str, Any] | None = None,
            updates: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_status(old or {}, updates or {}, dom, obs, node="n", generation=2, decision=PVM,
                        leases={"52:54:00:00:00:01": "10.66.0.10"}, guest_info={}, now=NOW)


PHASES = [
    ("running", RUNNING, Observed(SPEC), {}, "Running"),
    ("stopping", RUNNING, Observed(SPEC), {"shutdownDeadline": "2026-01-01T12:01:00Z"}, "Stopping"),
    ("stopped", OFF, Observed(SPEC), {}, "Stopped"),
    ("absent", None, Observed(SPEC), {}, "Stopped"),
    ("pending", None, Observed(SPEC, waiting="volume ns/root is Provisioning"), {}, "Pending"),
    ("invalid", None, Observed(None, spec_error="spec.memory.size: bad"), {}, "Failed"),
    ("start-failed", None, Observed(SPEC, start_error="starting the domain failed: x"), {}, "Failed"),
    ("terminating", RUNNING, Observed(SPEC, deleting=True), {}, "Terminating"),
]


@pytest.mark.parametrize("dom,obs,updates,phase", [c[1:] for c in PHASES], ids=[c[0] for c in PHASES])
def test_phase(dom: DomainStatus | None, obs: Observed, updates: dict[str, Any], phase: str) -> None:
    assert _status(dom, obs, updates=updates)["phase"] == phase


def test_running_status_reports_ip_emulation_and_conditions() -> None:
    st = _status(RUNNING, Observed(SPEC, started_now=True))
    assert st["domainState"] == "Running" and st["startedAt"] == "2026-01-01T12:00:00Z"
    assert st["interfaces"] == [{"name": "default", "mac": "52:54:00:00:00:01", "ipAddress": "10.66.0.10",
                                 "ipAddresses": ["10.66.0.10"]}]
    assert st["emulation"]["domainType"] == "qemu" and st["emulation"]["reason"] == "PVMOnly"
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Running"]["status"] == "True" and conds["AgentConnected"]["status"] == "False"
    assert all(c["observedGeneration"] == 2 for c in conds.values())


def test_transition_time_is_kept_while_the_status_holds() -> None:
    first = _status(RUNNING, Observed(SPEC))
    later = build_status(first, {}, RUNNING, Observed(SPEC), node="n", generation=2, decision=PVM, leases={},
                         guest_info={}, now=NOW + dt.timedelta(minutes=5))
    running = next(c for c in later["conditions"] if c["type"] == "Running")
    assert running["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert later["interfaces"] == [{"name": "default", "mac": "52:54:00:00:00:01"}], "no lease, no IP claimed"


def test_node_labels_and_status_from_recorded_hosts() -> None:
    config = AgentConfig(kubeconfig=Path("/k"), node_name="n1", pki_dir=Path("/p"))
    facts = gather_facts(HOSTS / "intel-nested")
    decision = decide(facts)
    labels = node_labels(config, facts, decision)
    assert labels["virtualization.deckhouse.io/kvm"] == "true"
    assert labels["virtualization.deckhouse.io/kvm-nested"] == "true"
    assert labels["virtualization.deckhouse.io/cpu-model"] == "Intel-R-Xeon-R-Gold-6338-CPU-2.00GHz"
    assert labels["node-role.kubernetes.io/worker"] == "", "kubectl get nodes shows the role"
    st = node_status(config, facts, decision, old={}, node_ip="10.0.0.5", console_port=10250, ready=True,
                     ready_reason="NodeHandlerReady", ready_message="", now=NOW)
    assert st["capacity"] == {"cpu": "4", "memory": "65859240Ki", "pods": "0"}
    assert st["allocatable"]["memory"] == f"{65859240 - 512 * 1024}Ki"
    assert {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]} == {
        "Ready": ("True", "NodeHandlerReady"), "KVM": ("True", "HardwareVirtualization")}
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert label_value("--AMD EPYC 7763 64-Core Processor--") == "AMD-EPYC-7763-64-Core-Processor"
