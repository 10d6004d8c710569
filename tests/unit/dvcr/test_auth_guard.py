"""DVCR's authentication under a flood: verdict caches (basic and TokenReview, positive and
negative, bounded), per-source throttling of failures, and the cost gate
(controlplane.dvcr.authguard through controlplane.dvcr.auth.Authenticator)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from controlplane.dvcr.auth import Authenticator, AuthError, hash_password
from controlplane.dvcr.authguard import FailureThrottle, GuardSettings, TooManyAttempts, VerdictCache
from controlplane.dvcr.uploadrequest import parse_create, parse_offset


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{hash_password('right', rounds=4)}\n")
    return path


class CountingAuth(Authenticator):
    """An Authenticator whose TokenReview and bcrypt calls are counted."""

    def __init__(self, htpasswd: Path, **kw: Any) -> None:
        super().__init__(htpasswd=htpasswd, kubeconfig=htpasswd, **kw)
        self.reviews: list[str] = []

    def _token_review(self, token: str) -> dict[str, Any]:
        self.reviews.append(token)
        if token == "good":
            return {"authenticated": True, "user": {"username": "u", "groups": ["system:masters"]}}
        if token == "broken":
            raise ConnectionError("API server down")
        return {"authenticated": False}


async def test_token_reviews_are_cached_positive_and_negative(htpasswd: Path) -> None:
    auth = CountingAuth(htpasswd)
    for _ in range(5):
        identity = await auth.authenticate("Bearer good", "10.0.0.1")
        assert identity is not None and identity.role == "admin"
    for _ in range(5):
        with pytest.raises(AuthError, match="not accepted"):
            await auth.authenticate("Bearer bad", "10.0.0.2")
    assert auth.reviews == ["good", "bad"]


async def test_a_failed_review_is_not_a_verdict(htpasswd: Path) -> None:
    auth = CountingAuth(htpasswd)
    for _ in range(2):
        with pytest.raises(AuthError, match="retry later"):
            await auth.authenticate("Bearer broken", "10.0.0.3")
    assert auth.reviews == ["broken", "broken"]


async def test_failures_are_throttled_per_source_and_verified_credentials_pass(htpasswd: Path) -> None:
    auth = CountingAuth(htpasswd, guard=GuardSettings(failure_burst=3, failure_refill_seconds=60))
    assert await auth.authenticate(basic("alice", "right"), "10.0.0.9") is not None
    for i in range(3):
        with pytest.raises(AuthError):
            await auth.authenticate(basic("alice", f"wrong{i}"), "10.0.0.9")
    with pytest.raises(TooManyAttempts) as caught:
        await auth.authenticate(basic("alice", "wrong-next"), "10.0.0.9")
    assert caught.value.retry_after >= 1
    assert await auth.authenticate(basic("alice", "right"), "10.0.0.9") is not None, "cached: not throttled"
    with pytest.raises(AuthError):  # another source is checked
        await auth.authenticate(basic("alice", "wrong-elsewhere"), "10.0.0.10")


async def test_unknown_tokens_from_one_source_stop_costing_reviews(htpasswd: Path) -> None:
    auth = CountingAuth(htpasswd, guard=GuardSettings(failure_burst=5, failure_refill_seconds=60))
    refused = 0
    for i in range(50):
        try:
            await auth.authenticate(f"Bearer random-{i}", "10.0.0.4")
        except TooManyAttempts:
            refused += 1
        except AuthError:
            pass
    assert len(auth.reviews) == 5 and refused == 45


async def test_a_cached_login_ends_when_the_htpasswd_entry_changes(htpasswd: Path) -> None:
    import os
    import time

    auth = CountingAuth(htpasswd)
    assert await auth.authenticate(basic("alice", "right"), "s") is not None
    htpasswd.write_text(f"alice:{hash_password('new', rounds=4)}\n")
    os.utime(htpasswd, (time.time() + 5, time.time() + 5))
    auth._users._checked = 0.0  # noqa: SLF001 - skip the once-a-second re-read delay
    with pytest.raises(AuthError):
        await auth.authenticate(basic("alice", "right"), "s")


def test_verdict_cache_is_bounded_oldest_first() -> None:
    cache: VerdictCache[int] = VerdictCache(3)
    for i in range(5):
        cache.put(str(i), i, 60)
    assert len(cache) == 3 and cache.get("0") is None and cache.get("4") == 4


def test_throttle_refills() -> None:
    throttle = FailureThrottle(2, 0.01)
    throttle.take("a")
    throttle.take("a")
    with pytest.raises(TooManyAttempts):
        throttle.take("a")
    import time

    time.sleep(0.03)
    throttle.take("a")


@pytest.mark.parametrize(("doc", "field"), [
    ({"repository": "r", "ttlSeconds": 1e20}, "ttlSeconds"),
    ({"repository": "r", "ttlSeconds": float("nan")}, "ttlSeconds"),
    ({"repository": "r", "ttlSeconds": True}, "ttlSeconds"),
    ({"repository": "r", "checksums": "zzz"}, "checksums"),
    ({"repository": "r", "checksums": {"sha256": "zzz"}}, "checksums.sha256"),
    ({"repository": "r", "checksums": {"crc": "00"}}, "checksums.crc"),
    ({"repository": 1}, "repository"),
    (["r"], "body"),
])
def test_upload_request_fields(doc: Any, field: str) -> None:
    from controlplane.dvcr.errors import RegistryError

    with pytest.raises(RegistryError) as caught:
        parse_create(doc)
    assert caught.value.status == 400 and caught.value.detail == {"field": field}


def test_upload_request_accepts_good_fields() -> None:
    req = parse_create({"repository": "r", "tag": "t", "ttlSeconds": 60, "checksums": {"SHA256": "a" * 64}})
    assert (req.repository, req.tag, req.ttl, req.checksums) == ("r", "t", 60.0, {"sha256": "a" * 64})


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", "9" * 30])
def test_upload_offset_must_be_a_byte_count(value: str) -> None:
    from controlplane.dvcr.errors import RegistryError

    with pytest.raises(RegistryError, match="Upload-Offset"):
        parse_offset(value)
    assert parse_offset(" 42 ") == 42
