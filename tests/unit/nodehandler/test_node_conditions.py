"""Conditions the node handler reports besides Ready and KVM (DVCRAccess): written with the
Node status, kept in their place, and a change makes the status be written at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.hypervisor import decide, gather_facts
from controlplane.nodehandler.node import NodeRegistrar, node_status

HOSTS = Path(__file__).resolve().parents[2] / "fixtures" / "hosts"
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_extra_conditions_are_written_with_the_status() -> None:
    config = AgentConfig(kubeconfig=Path("/k"), node_name="n1", pki_dir=Path("/p"))
    facts = gather_facts(HOSTS / "intel-nested")
    st = node_status(config, facts, decide(facts), old={}, node_ip="10.0.0.5", console_port=1, ready=True,
                     ready_reason="NodeHandlerReady", ready_message="", now=NOW,
                     extra={"DVCRAccess": (False, "DVCRCredentialsRefused", "refused (401)")})
    conds = {c["type"]: (c["status"], c["reason"], c["message"]) for c in st["conditions"]}
    assert conds["DVCRAccess"] == ("False", "DVCRCredentialsRefused", "refused (401)")
    assert list(conds) == ["Ready", "KVM", "DVCRAccess"]


def test_a_changed_condition_makes_the_status_be_written_at_once() -> None:
    config = AgentConfig(kubeconfig=Path("/k"), node_name="n1", pki_dir=Path("/p"))
    facts = gather_facts(HOSTS / "intel-nested")
    registrar = NodeRegistrar(None, config, facts, decide(facts), node_ip="10.0.0.5")  # type: ignore[arg-type]
    registrar.set_condition("DVCRAccess", True, "DVCRCredentialsAccepted", "ok")
    assert registrar._dirty.is_set()
    registrar._dirty.clear()
    registrar.set_condition("DVCRAccess", True, "DVCRCredentialsAccepted", "ok")
    assert not registrar._dirty.is_set()
    registrar.set_condition("DVCRAccess", False, "DVCRCredentialsRefused", "refused")
    assert registrar._dirty.is_set() and registrar.conditions["DVCRAccess"][0] is False
