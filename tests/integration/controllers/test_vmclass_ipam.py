"""VirtualMachineClass and IPAM controllers in a real `dvp server`, through kubectl."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from tests.services import polling
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration


eventually = functools.partial(polling.eventually, timeout=20, interval=0.1)


def get(server: ApiServerProcess, *args: str) -> dict[str, Any]:
    out = server.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def vmip(name: str, static: str | None = None, ns: str = "default") -> str:
    spec = {"type": "Static", "staticIP": static} if static else {"type": "Auto"}
    return json.dumps({"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualMachineIPAddress",
                       "metadata": {"name": name, "namespace": ns}, "spec": spec})


def test_generic_class_exists_after_start(apiserver: ApiServerProcess) -> None:
    cls = eventually(lambda: get(apiserver, "vmclass", "generic"))
    assert cls["metadata"]["annotations"][
        "virtualmachineclass.virtualization.deckhouse.io/is-default-class"] == "true"
    def reported(obj: dict[str, Any]) -> dict[str, Any] | None:  # a Ready condition about the current spec
        conds = (obj.get("status") or {}).get("conditions") or []
        ready = next((c for c in conds if c["type"] == "Ready"), None)
        return obj if ready and ready.get("observedGeneration") == obj["metadata"]["generation"] else None

    status = eventually(lambda: reported(get(apiserver, "vmclass", "generic")), timeout=60)["status"]
    assert status["phase"] in ("Pending", "Ready")
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["message"]


def test_auto_and_static_addresses_get_leases(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("apply", "-f", "-", input=vmip("ipam-auto"))
    apiserver.kubectl("apply", "-f", "-", input=vmip("ipam-static", "10.66.3.7"))
    auto = eventually(lambda: get(apiserver, "vmip", "ipam-auto").get("status", {}).get("address"))
    assert auto.startswith("10.66.") and auto not in ("10.66.0.0", "10.66.255.255")
    assert eventually(lambda: get(apiserver, "vmip", "ipam-static").get("status", {}).get("phase") == "Bound")
    lease = eventually(lambda: get(apiserver, "vmipl", "ip-10-66-3-7"))
    assert lease["spec"]["virtualMachineIPAddressRef"] == {"name": "ipam-static", "namespace": "default"}
    assert eventually(lambda: get(apiserver, "vmipl", "ip-10-66-3-7").get("status", {}).get("phase") == "Bound")


def test_static_address_outside_cidrs_is_refused_with_reason(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("apply", "-f", "-", input=vmip("ipam-outside", "192.168.1.1"))
    cond = eventually(lambda: next((c for c in get(apiserver, "vmip", "ipam-outside").get("status", {})
                                    .get("conditions", []) if c["type"] == "Bound"), None))
    assert cond["status"] == "False" and cond["reason"] == "VirtualMachineIPAddressIsOutOfTheValidRange"
    assert "192.168.1.1" in cond["message"]


def test_two_claims_of_one_static_address_end_with_one_winner(apiserver: ApiServerProcess) -> None:
    apiserver.kubectl("apply", "-f", "-", input=vmip("ipam-a", "10.66.4.4"))
    apiserver.kubectl("apply", "-f", "-", input=vmip("ipam-b", "10.66.4.4"))
    phases = eventually(lambda: sorted(get(apiserver, "vmip", n).get("status", {}).get("phase", "")
                                       for n in ("ipam-a", "ipam-b")) == ["Bound", "Pending"] and True)
    assert phases


def test_released_address_is_held_for_its_namespace_then_freed(tmp_path: Path, kubectl_path: Path) -> None:
    # the hold outlasts a loaded machine's reconcile delays, so the thief meets it (then waits it out)
    server = ApiServerProcess(tmp_path / "data", extra_args=["--vm-ip-hold", "15"])
    server.start()
    try:
        server.kubectl("create", "namespace", "other")
        server.kubectl("apply", "-f", "-", input=vmip("held", "10.66.9.9"))
        eventually(lambda: get(server, "vmip", "held").get("status", {}).get("phase") == "Bound")
        server.kubectl("delete", "vmip", "held")
        lease = eventually(lambda: get(server, "vmipl", "ip-10-66-9-9").get("status", {}).get("phase") == "Released")
        assert lease
        server.kubectl("apply", "-f", "-", input=vmip("thief", "10.66.9.9", ns="other"))
        cond = eventually(lambda: next((c for c in get(server, "vmip", "thief", "-n", "other").get("status", {})
                                        .get("conditions", []) if c["type"] == "Bound"), None))
        assert cond["status"] == "False" and "held" in cond["message"]
        # after the hold the lease is deleted and the other namespace gets the address
        assert eventually(lambda: get(server, "vmip", "thief", "-n", "other").get("status", {})
                          .get("phase") == "Bound", timeout=60)
    finally:
        server.stop()
