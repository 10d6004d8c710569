"""`dvp install` run again without a host it joined before (installer/install/removal.py): the
refusal names every removed host that still runs VMs and those VMs; a removed host with none
only gets a note on clearing it away."""

from __future__ import annotations

from installer.install.removal import RemovedNode, notes, refusal


def test_refusal_names_host_address_and_vms() -> None:
    removed = [RemovedNode("w1", "10.0.0.3", ["prod/db", "prod/web"]), RemovedNode("w2", "", [])]
    message = refusal(removed)
    assert message is not None
    assert message.startswith("hosts removed from the config still run VMs: node w1 (host 10.0.0.3) still runs 2 "
                              "VM(s): prod/db, prod/web; ")
    assert "w2" not in message
    assert notes(removed) == ["node w2 is no longer in the config and runs no VMs: run `dvp uninstall` on that host, "
                              "then `kubectl delete node w2`"]


def test_nothing_removed_or_nothing_running_is_no_refusal() -> None:
    assert refusal([]) is None
    assert refusal([RemovedNode("w2", "10.0.0.4", [])]) is None
    assert notes([]) == []
