"""How many workers each controller runs: the kinds on a VirtualMachine's way to Running get more
than the default (their cycles wait on API writes; 30 VMs applied at once queued behind two), and
every kind they name is a controller the manager really builds."""

from __future__ import annotations

from types import SimpleNamespace

from controlplane.controllers.manager import BUILDERS, START_PATH_WORKERS, WORKERS, Manager


def test_the_start_path_kinds_are_controllers_the_manager_builds() -> None:
    assert {"vm", "vmip", "vmmac"} <= set(WORKERS) <= set(BUILDERS)


def test_start_path_kinds_get_more_workers_and_the_rest_the_default() -> None:
    default = SimpleNamespace(workers=2)
    assert Manager.workers_of(default, "vm") == START_PATH_WORKERS > 2  # type: ignore[arg-type]
    assert Manager.workers_of(default, "vdsnapshot") == 2  # type: ignore[arg-type]
    assert Manager.workers_of(SimpleNamespace(workers=12), "vm") == 12  # type: ignore[arg-type]  # never fewer
