"""ServiceAccount tokens as kube-apiserver makes them: a JWT naming
`system:serviceaccount:NS:NAME` with the account's groups, accepted until it expires and
while the account it names exists with the same uid; anything else is no one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controlplane.apiserver import errors, serviceaccounts
from controlplane.apiserver.satokens import API_AUDIENCE, ServiceAccountTokens, ensure_signing_key


@pytest.fixture
def accounts() -> dict[tuple[str, str], str]:
    return {("team-a", "robot"): "uid-1"}


@pytest.fixture
def tokens(tmp_path: Path, accounts: dict[tuple[str, str], str]) -> ServiceAccountTokens:
    return ServiceAccountTokens(ensure_signing_key(tmp_path), lambda ns, name: accounts.get((ns, name)))


def test_a_token_names_the_account_and_its_groups(tokens: ServiceAccountTokens, tmp_path: Path) -> None:
    token, expires = tokens.issue("team-a", "robot", "uid-1", audiences=[API_AUDIENCE], seconds=3600)
    user = tokens.authenticate(f"Bearer {token}")
    assert user is not None and user.name == "system:serviceaccount:team-a:robot"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated")
    assert abs(expires - time.time() - 3600) < 5
    assert (tmp_path / "sa.key").stat().st_mode & 0o777 == 0o600


def test_deleted_or_recreated_account_refuses_its_tokens(tokens: ServiceAccountTokens,
                                                         accounts: dict[tuple[str, str], str]) -> None:
    token, _ = tokens.issue("team-a", "robot", "uid-1", audiences=[API_AUDIENCE], seconds=3600)
    accounts[("team-a", "robot")] = "uid-2"
    assert tokens.authenticate(f"Bearer {token}") is None
    del accounts[("team-a", "robot")]
    assert tokens.authenticate(f"Bearer {token}") is None


def test_expired_foreign_audience_tampered_and_foreign_key_tokens_are_refused(
        tokens: ServiceAccountTokens, tmp_path: Path, accounts: dict[tuple[str, str], str]) -> None:
    expired, _ = tokens.issue("team-a", "robot", "uid-1", audiences=[API_AUDIENCE], seconds=-1)
    other_audience, _ = tokens.issue("team-a", "robot", "uid-1", audiences=["vault"], seconds=3600)
    good, _ = tokens.issue("team-a", "robot", "uid-1", audiences=[API_AUDIENCE], seconds=3600)
    head, claims, sig = good.split(".")
    tampered = f"{head}.{claims[:-2]}AA.{sig}"
    other_key = ServiceAccountTokens(ensure_signing_key(tmp_path / "other"), lambda ns, name: accounts.get((ns, name)))
    foreign, _ = other_key.issue("team-a", "robot", "uid-1", audiences=[API_AUDIENCE], seconds=3600)
    for token in (expired, other_audience, tampered, foreign, "a.b.c", "not-a-jwt", "..", "e30.e30.!!"):
        assert tokens.authenticate(f"Bearer {token}") is None, token
    assert tokens.authenticate(None) is None


@pytest.mark.parametrize(("spec", "field"), [
    ({"expirationSeconds": 599}, "spec.expirationSeconds"),
    ({"expirationSeconds": "1h"}, "spec.expirationSeconds"),
    ({"expirationSeconds": 2**32 + 1}, "spec.expirationSeconds"),
    ({"audiences": [""]}, "spec.audiences"),
    ({"audiences": "api"}, "spec.audiences"),
    ({"boundObjectRef": {"kind": "Pod", "name": "p"}}, "spec.boundObjectRef"),
], ids=["too-short", "not-a-number", "too-long", "empty-audience", "audiences-not-a-list", "bound"])
def test_bad_token_requests_name_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(errors.ApiError) as bad:
        serviceaccounts._spec({"spec": spec})
    assert bad.value.code == 422 and field in bad.value.message


def test_defaults_are_kubes() -> None:
    assert serviceaccounts._spec({}) == (3600, [API_AUDIENCE])
