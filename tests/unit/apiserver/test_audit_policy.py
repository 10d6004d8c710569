"""The audit policy (kube-apiserver's audit.k8s.io/v1 Policy): the first matching rule gives
the level, each rule field narrows the match, credentials are capped at Metadata, omitStages
drops the request, and a bad file is an error naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.authz.audit_policy import METADATA_ONLY, Level, PolicyError, parse
from controlplane.apiserver.authz.requests import attributes_of


def policy(*rules: dict[str, Any], **top: Any) -> Any:
    return parse({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **top})


def req(method: str, path: str, user: str = "dev", groups: tuple[str, ...] = ("devs",)) -> Any:
    return attributes_of(method, path, {}, user, groups)


CM = "/api/v1/namespaces/team-a/configmaps/c1"


def test_the_first_matching_rule_gives_the_level_and_no_match_is_none() -> None:
    p = policy({"level": "None", "users": ["system:kube-proxy"]},
               {"level": "RequestResponse", "resources": [{"group": "", "resources": ["configmaps"]}]},
               {"level": "Request", "verbs": ["create"]},
               {"level": "Metadata", "nonResourceURLs": ["/healthz*", "/version"]})
    assert p.level(req("GET", CM, user="system:kube-proxy")) is Level.NONE
    assert p.level(req("GET", CM)) is Level.REQUEST_RESPONSE
    assert p.level(req("POST", "/apis/virtualization.deckhouse.io/v1alpha2/namespaces/a/virtualmachines")) \
        is Level.REQUEST
    assert p.level(req("GET", "/healthz/etcd")) is Level.METADATA and p.level(req("GET", "/version")) is Level.METADATA
    assert p.level(req("GET", "/metrics")) is Level.NONE  # no rule matched
    assert METADATA_ONLY.level(req("GET", "/metrics")) is Level.METADATA


@pytest.mark.parametrize(("rule", "path", "matches"), [
    ({"userGroups": ["devs"]}, CM, True),
    ({"userGroups": ["ops"]}, CM, False),
    ({"namespaces": ["team-a"]}, CM, True),
    ({"namespaces": ["team-b"]}, CM, False),
    ({"namespaces": [""]}, "/api/v1/nodes/n1", True),  # "" is cluster scope
    ({"namespaces": ["team-a"]}, "/healthz", False),  # never a non-resource request
    ({"resources": [{"group": "", "resources": ["pods/log"]}]}, "/api/v1/namespaces/a/pods/p/log", True),
    ({"resources": [{"group": "", "resources": ["pods"]}]}, "/api/v1/namespaces/a/pods/p/log", False),
    ({"resources": [{"group": "", "resources": ["*/status"]}]}, "/api/v1/nodes/n1/status", True),
    ({"resources": [{"group": "", "resources": ["nodes/*"]}]}, "/api/v1/nodes/n1/status", True),
    ({"resources": [{"group": "apps"}]}, CM, False),
    ({"resources": [{"group": "", "resourceNames": ["c1"]}]}, CM, True),
    ({"resources": [{"group": "", "resourceNames": ["c2"]}]}, CM, False),
    ({"nonResourceURLs": ["/healthz*"]}, CM, False),
])
def test_rule_fields(rule: dict[str, Any], path: str, matches: bool) -> None:
    p = policy({"level": "Request", **rule})
    assert (p.level(req("GET", path)) is Level.REQUEST) is matches


def test_credentials_are_never_recorded_beyond_metadata() -> None:
    p = policy({"level": "RequestResponse"})
    assert p.level(req("POST", "/api/v1/namespaces/a/secrets")) is Level.METADATA
    assert p.level(req("POST", "/api/v1/namespaces/a/serviceaccounts/sa/token")) is Level.METADATA
    assert p.level(req("POST", "/apis/authentication.k8s.io/v1/tokenreviews")) is Level.METADATA
    assert p.level(req("POST", "/api/v1/namespaces/a/configmaps")) is Level.REQUEST_RESPONSE


def test_omit_stages_response_complete_records_nothing() -> None:
    assert policy({"level": "Metadata", "omitStages": ["ResponseComplete"]}).level(req("GET", CM)) is Level.NONE
    assert policy({"level": "Metadata"}, omitStages=["ResponseComplete"]).level(req("GET", CM)) is Level.NONE
    assert policy({"level": "Metadata", "omitStages": ["RequestReceived"]}).level(req("GET", CM)) is Level.METADATA


@pytest.mark.parametrize(("doc", "message"), [
    ({"apiVersion": "v1", "kind": "Policy", "rules": [{"level": "None"}]}, "apiVersion/kind"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy"}, "rules: must be a non-empty list"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Everything"}]}, "rules[0].level"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}, {"level": "Metadata",
                                                                     "verbs": "get"}]}, "rules[1].verbs"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "resources": [{"group": 5}]}]}, "rules[0].resources[0].group"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "omitStages": ["Later"]}]}, "rules[0].omitStages: unknown stage 'Later'"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "resources": [{"group": ""}], "nonResourceURLs": ["/x"]}]}, "cannot both be set"),
])
def test_a_bad_policy_names_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(doc, "policy.yaml")


@pytest.mark.parametrize(("uri", "logged"), [
    ("/api/v1/namespaces?token=s3cr3t&limit=5", "/api/v1/namespaces?token=REDACTED&limit=5"),
    ("/api/v1/pods?watch=1&access_token=s3cr3t", "/api/v1/pods?watch=1&access_token=REDACTED"),
    ("/api/v1/pods?Access%5Ftoken=s3cr3t", "/api/v1/pods?Access%5Ftoken=REDACTED"),
    ("/api/v1/pods?labelSelector=token%3Dx", "/api/v1/pods?labelSelector=token%3Dx"),
    ("/api/v1/pods", "/api/v1/pods"),
])
def test_a_credential_in_the_query_never_reaches_the_audit_log(uri: str, logged: str) -> None:
    from controlplane.apiserver.authz.audit import redacted_uri

    assert redacted_uri(uri) == logged
