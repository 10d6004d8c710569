"""Bad input gets a clear status, never a crash: a VM whose disk does not exist yet waits,
naming it, and starts once it appears; a VM outside its class's sizing policy is told which
rule; an image URL that answers 404 or whose checksum does not match ends Failed, saying so."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from nodeimage.guest import GuestImage
from tests.integration.quickstart.manifests import API, vd_from_image, vi_http, vm
from tests.integration.quickstart.platform import Platform

pytestmark = pytest.mark.integration


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def test_missing_disk_waits_then_starts(platform: Platform) -> None:
    platform.apply(vi_http("bad-guest", platform.images.url("dvp-guest-cloud.qcow2")))
    platform.apply(vm("waits", "later-disk"))
    pending = platform.wait("vm", "waits", lambda o: "later-disk" in _condition(o, "BlockDevicesReady").get("message", ""),
                            what="BlockDevicesReady naming the disk")
    assert pending["status"]["phase"] == "Pending"
    assert _condition(pending, "BlockDevicesReady")["status"] == "False"
    assert not platform.domains()
    platform.phase("vi", "bad-guest", "Ready", timeout=120)
    platform.apply(vd_from_image("later-disk", "bad-guest"))
    platform.phase("vm", "waits", "Running", timeout=180)


def test_class_sizing_policy_violation_is_reported(platform: Platform) -> None:
    platform.apply({"apiVersion": API, "kind": "VirtualMachineClass", "metadata": {"name": "small-only"},
                    "spec": {"cpu": {"type": "Model", "model": "Nehalem"},
                             "sizingPolicies": [{"cores": {"min": 1, "max": 2},
                                                 "memory": {"min": "128Mi", "max": "1Gi"},
                                                 "coreFractions": [10, 100]}]}})
    platform.apply(vm("too-big", "no-such-disk-either", cls="small-only", cores=4))
    obj = platform.wait("vm", "too-big", lambda o: _condition(o, "SizingPolicyMatched").get("status") == "False",
                        what="SizingPolicyMatched False")
    message = _condition(obj, "SizingPolicyMatched")["message"]
    assert "cores" in message and "4" in message, message
    assert obj["status"]["phase"] == "Pending"
    # the controller is alive and well: the next change is still processed
    platform.kubectl("patch", "vm", "too-big", "--type=merge", "-p", '{"spec":{"cpu":{"cores":2}}}')
    platform.wait("vm", "too-big", lambda o: _condition(o, "SizingPolicyMatched").get("status") != "False",
                  what="the violation cleared")


def test_image_url_404_fails_with_the_status(platform: Platform) -> None:
    platform.apply(vi_http("missing", platform.images.url("no-such-image.qcow2")))
    obj = platform.phase("vi", "missing", "Failed", timeout=60)
    message = _condition(obj, "Ready").get("message", "") + _condition(obj, "DatasourceReady").get("message", "")
    assert "404" in message, obj["status"]


def test_checksum_mismatch_fails(platform: Platform, guest_image: GuestImage) -> None:
    real = hashlib.sha256(guest_image.qcow2.read_bytes()).hexdigest()
    wrong = hashlib.sha256(b"something else").hexdigest()
    platform.apply(vi_http("bad-sum", platform.images.url("dvp-guest-cloud.qcow2"), checksum={"sha256": wrong}))
    obj = platform.phase("vi", "bad-sum", "Failed", timeout=90)
    message = _condition(obj, "Ready").get("message", "")
    assert "checksum" in message.lower() or "sha256" in message.lower(), obj["status"]
    assert real not in message or wrong in message
    platform.apply(vi_http("good-sum", platform.images.url("dvp-guest-cloud.qcow2"), checksum={"sha256": real}))
    platform.phase("vi", "good-sum", "Ready", timeout=120)
