"""The audit policy: which requests the audit log records and how much of each, as
kube-apiserver's `--audit-policy-file` (an `audit.k8s.io/v1` Policy).

The first rule that matches a request gives its level: `None` (not recorded), `Metadata`
(who, what, when, the answer's code), `Request` (and the request body), `RequestResponse`
(and the response body). A request no rule matches is not recorded. A rule matches when each
of its fields that is set matches: `users`, `userGroups`, `verbs`, `namespaces` ("" for
cluster-scoped objects), `resources` (group, resources with `resource/subresource` and `*`
forms, resourceNames) for resource requests, `nonResourceURLs` (exact, or a prefix ending in
`*`) for the others. `omitStages` (the policy's and the rule's) may drop `ResponseComplete`,
the one stage recorded here.

Whatever the policy says, the bodies of Secrets, TokenReviews, TokenRequests and the other
`authentication.k8s.io` requests are never recorded (those requests are capped at Metadata):
credentials do not end up in the audit log. Without a policy file every request is recorded at
Metadata.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controlplane.apiserver.authz.rules import Attributes

RESPONSE_COMPLETE = "ResponseComplete"
STAGES = ("RequestReceived", "ResponseStarted", RESPONSE_COMPLETE, "Panic")


class Level(enum.IntEnum):
    NONE = 0
    METADATA = 1
    REQUEST = 2
    REQUEST_RESPONSE = 3

    @property
    def api_name(self) -> str:
        return {0: "None", 1: "Metadata", 2: "Request", 3: "RequestResponse"}[self.value]


_LEVELS = {lvl.api_name: lvl for lvl in Level}


class PolicyError(ValueError):
    """An audit policy that cannot be used; the message names the file and the field."""


def _sensitive(attrs: Attributes) -> bool:
    return attrs.resource_request and (
        (attrs.group == "" and attrs.resource == "secrets")
        or (attrs.group == "" and attrs.resource == "serviceaccounts" and attrs.subresource == "token")
        or attrs.group == "authentication.k8s.io")


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()

    def matches(self, attrs: Attributes) -> bool:
        if attrs.group != self.group:
            return False
        if self.resources:
            full = attrs.full_resource
            wanted = {full, "*", f"*/{attrs.subresource}" if attrs.subresource else "",
                      f"{attrs.resource}/*" if attrs.subresource else ""}
            if not (self.resources & (wanted - {""})):
                return False
        return not self.resource_names or attrs.name in self.resource_names


@dataclass(frozen=True)
class PolicyRule:
    level: Level
    users: frozenset[str] = frozenset()
    user_groups: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    resources: tuple[GroupResources, ...] = ()
    namespaces: frozenset[str] | None = None
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()

    def matches(self, attrs: Attributes) -> bool:
        if self.users and attrs.user not in self.users:
            return False
        if self.user_groups and not self.user_groups.intersection(attrs.groups):
            return False
        if self.verbs and attrs.verb not in self.verbs:
            return False
        if not self.resources and not self.non_resource_urls and self.namespaces is None:
            return True
        if attrs.resource_request:
            if self.non_resource_urls and not self.resources:
                return False
            if self.namespaces is not None and attrs.namespace not in self.namespaces:
                return False
            return not self.resources or any(r.matches(attrs) for r in self.resources)
        if not self.non_resource_urls:
            return False
        return any(attrs.path == u or (u.endswith("*") and attrs.path.startswith(u[:-1]))
                   for u in self.non_resource_urls)


@dataclass(frozen=True)
class Policy:
    rules: tuple[PolicyRule, ...] = field(default_factory=lambda: (PolicyRule(Level.METADATA),))
    omit_stages: frozenset[str] = frozenset()

    def level(self, attrs: Attributes) -> Level:
        """How much of this request to record (its first matching rule; Metadata at most for credentials)."""
        for rule in self.rules:
            if rule.matches(attrs):
                if RESPONSE_COMPLETE in self.omit_stages or RESPONSE_COMPLETE in rule.omit_stages:
                    return Level.NONE
                return min(rule.level, Level.METADATA) if _sensitive(attrs) else rule.level
        return Level.NONE


METADATA_ONLY = Policy()
"""The policy without a file: every request at Metadata."""


def load(path: Path) -> Policy:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"audit policy {path}: cannot read it: {exc}") from exc
    return parse(doc, str(path))


def parse(doc: Any, source: str = "audit policy") -> Policy:
    def fail(where: str, why: str) -> PolicyError:
        return PolicyError(f"{source}: {where}: {why}")

    if not isinstance(doc, Mapping):
        raise fail("document", "must be an audit.k8s.io/v1 Policy object")
    if doc.get("apiVersion") not in ("audit.k8s.io/v1",) or doc.get("kind") != "Policy":
        raise fail("apiVersion/kind", f"must be audit.k8s.io/v1 Policy (got {doc.get('apiVersion')} {doc.get('kind')})")
    rules_doc = doc.get("rules")
    if not isinstance(rules_doc, list) or not rules_doc:
        raise fail("rules", "must be a non-empty list (the first matching rule gives a request's level)")
    omit = _stages(doc.get("omitStages"), "omitStages", fail)
    return Policy(tuple(_rule(r, f"rules[{i}]", fail) for i, r in enumerate(rules_doc)), omit)


def _strings(value: Any, where: str, fail: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(where, "must be a list of strings")
    return tuple(value)


def _stages(value: Any, where: str, fail: Any) -> frozenset[str]:
    stages = _strings(value, where, fail)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise fail(where, f"unknown stage {unknown[0]!r} (known: {', '.join(STAGES)})")
    return frozenset(stages)


def _rule(doc: Any, where: str, fail: Any) -> PolicyRule:
    if not isinstance(doc, Mapping):
        raise fail(where, "must be an object")
    level = _LEVELS.get(doc.get("level"))  # type: ignore[arg-type]
    if level is None:
        raise fail(f"{where}.level", f"must be one of {', '.join(_LEVELS)} (got {doc.get('level')!r})")
    resources = []
    for j, gr in enumerate(doc.get("resources") or []):
        at = f"{where}.resources[{j}]"
        if not isinstance(gr, Mapping):
            raise fail(at, "must be an object with group, resources and resourceNames")
        group = gr.get("group", "")
        if not isinstance(group, str):
            raise fail(f"{at}.group", "must be a string (\"\" is the core group)")
        resources.append(GroupResources(group, frozenset(_strings(gr.get("resources"), f"{at}.resources", fail)),
                                        frozenset(_strings(gr.get("resourceNames"), f"{at}.resourceNames", fail))))
    urls = _strings(doc.get("nonResourceURLs"), f"{where}.nonResourceURLs", fail)
    if resources and urls:
        raise fail(where, "resources and nonResourceURLs cannot both be set in one rule")
    namespaces = doc.get("namespaces")
    return PolicyRule(
        level=level,
        users=frozenset(_strings(doc.get("users"), f"{where}.users", fail)),
        user_groups=frozenset(_strings(doc.get("userGroups"), f"{where}.userGroups", fail)),
        verbs=frozenset(_strings(doc.get("verbs"), f"{where}.verbs", fail)),
        resources=tuple(resources),
        namespaces=frozenset(_strings(namespaces, f"{where}.namespaces", fail)) or None,
        non_resource_urls=urls,
        omit_stages=_stages(doc.get("omitStages"), f"{where}.omitStages", fail),
    )
