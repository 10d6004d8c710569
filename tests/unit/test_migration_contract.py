"""The live migration contract (controlplane/api/migration.py): DVP's liveMigrationPolicy with the
operation's force, the instance request round trip, what counts as in flight, and DVP's limits
(one out and one in per node, a cluster cap)."""

from __future__ import annotations

import pytest

from controlplane.api.migration import (
    MigrationRequest,
    PolicyError,
    auto_converge,
    in_flight,
    queue_reason,
)

# policy, VMOP force (None: unset) -> auto-converge, or the error's field
POLICY = [
    ("AlwaysSafe", None, False), ("AlwaysSafe", False, False), ("AlwaysSafe", True, "error"),
    ("PreferSafe", None, False), ("PreferSafe", False, False), ("PreferSafe", True, True),
    ("AlwaysForced", None, True), ("AlwaysForced", True, True), ("AlwaysForced", False, "error"),
    ("PreferForced", None, True), ("PreferForced", True, True), ("PreferForced", False, False),
    (None, None, False), (None, True, True),
]


@pytest.mark.parametrize("policy,force,expected", POLICY, ids=[f"{p}-force={f}" for p, f, _ in POLICY])
def test_live_migration_policy_with_force(policy: str | None, force: bool | None, expected: bool | str) -> None:
    if expected == "error":
        with pytest.raises(PolicyError, match="spec.force"):
            auto_converge(policy, force)
    else:
        assert auto_converge(policy, force) is expected


def test_request_round_trip() -> None:
    req = MigrationRequest(id="u1", target_node="n2", target_address="10.0.0.2", auto_converge=True, timeout_seconds=90)
    assert MigrationRequest.parse({"migration": req.to_api()}) == req
    assert MigrationRequest.parse({}) is None and MigrationRequest.parse({"migration": {"id": "x"}}) is None


def _inst(node: str, req: dict[str, str] | None, status: dict[str, str] | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"nodeName": node}
    if req:
        spec["migration"] = req
    return {"spec": spec, "status": {"migration": status} if status else {}}


@pytest.mark.parametrize("inst,expected", [
    (_inst("n1", None), None),
    (_inst("n1", {"id": "a", "targetNode": "n2"}), ("n1", "n2")),
    (_inst("n1", {"id": "a", "targetNode": "n2"}, {"id": "a", "phase": "Migrating", "sourceNode": "n1"}), ("n1", "n2")),
    (_inst("n2", {"id": "a", "targetNode": "n2"}, {"id": "a", "phase": "Succeeded", "sourceNode": "n1"}), None),
    (_inst("n1", {"id": "b", "targetNode": "n3"}, {"id": "a", "phase": "Failed"}), ("n1", "n3")),
], ids=["none", "requested", "running", "ended", "new-request-after-old-failure"])
def test_in_flight(inst: dict[str, object], expected: tuple[str, str] | None) -> None:
    assert in_flight(inst) == expected


@pytest.mark.parametrize("flights,source,target,cap,expected", [
    ([], "n1", "n2", 4, None),
    ([("n1", "n3")], "n1", "n2", 4, "n1 already has an outgoing"),
    ([("n3", "n2")], "n1", "n2", 4, "n2 already has an incoming"),
    ([("n3", "n4"), ("n5", "n6")], "n1", "n2", 2, "the cluster's limit is 2"),
    ([("n3", "n4")], "n1", "n2", 2, None),
], ids=["free", "one-out-per-node", "one-in-per-node", "cluster-cap", "under-cap"])
def test_limits(flights: list[tuple[str, str]], source: str, target: str, cap: int, expected: str | None) -> None:
    got = queue_reason(flights, source, target, cluster_cap=cap)
    assert got == expected if expected is None else expected in (got or "")
