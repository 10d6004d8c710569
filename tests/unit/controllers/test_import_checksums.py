"""The image/disk controllers refuse checksum algorithms this platform cannot compute, up front."""

from __future__ import annotations

import hashlib

import pytest

from controlplane.controllers.image.importing import unverifiable


def _has(alg: str) -> bool:
    try:
        hashlib.new(alg)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("alg", ["md5", "sha1", "sha256", "sha512"])
def test_hashlib_algorithms_pass(alg: str) -> None:
    assert unverifiable({alg: "0" * 8}) is None


@pytest.mark.parametrize("alg", ["streebog256", "streebog512"])
def test_streebog_fails_with_a_reason_when_missing(alg: str) -> None:
    outcome = unverifiable({"sha256": "0" * 64, alg: "0" * 64})
    if _has(alg):
        assert outcome is None
        return
    assert outcome is not None and outcome.state == "failed" and outcome.reason == "ProvisioningFailed"
    assert f"checksum {alg} cannot be verified here" in outcome.message and "sha256" in outcome.message
