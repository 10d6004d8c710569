"""What one RBAC PolicyRule allows, and the attributes of a request it is matched against.

Pure functions with Kubernetes' semantics (`rbac/v1/evaluation_helpers.go`): `*` matches
every verb, group, resource and resource name; `resource/subresource` names a subresource
and `*/sub` a subresource of every resource; resourceNames never match a list, watch,
create or deletecollection without a name; nonResourceURLs match exactly or by a trailing
`*` prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALL = "*"


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizers see it (kube's `authorizer.Attributes`)."""

    user: str
    groups: tuple[str, ...]
    verb: str
    resource_request: bool = True
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    label_selector: str = ""

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass(frozen=True)
class Rule:
    """A PolicyRule in a form that is quick to match: every list a frozenset."""

    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()
    non_resource_urls: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": sorted(self.verbs)}
        if self.api_groups or self.resources:
            out["apiGroups"] = sorted(self.api_groups)
            out["resources"] = sorted(self.resources)
        if self.resource_names:
            out["resourceNames"] = sorted(self.resource_names)
        if self.non_resource_urls:
            out["nonResourceURLs"] = sorted(self.non_resource_urls)
        return out


def _strings(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))


def parse_rule(raw: Mapping[str, Any]) -> Rule:
    """A PolicyRule as stored (already validated by the kind's schema)."""
    return Rule(verbs=_strings(raw.get("verbs")), api_groups=_strings(raw.get("apiGroups")),
                resources=_strings(raw.get("resources")), resource_names=_strings(raw.get("resourceNames")),
                non_resource_urls=_strings(raw.get("nonResourceURLs")))


def parse_rules(raw: Any) -> tuple[Rule, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(parse_rule(r) for r in raw if isinstance(r, dict))


def _verb_matches(rule: Rule, verb: str) -> bool:
    return ALL in rule.verbs or verb in rule.verbs


def _group_matches(rule: Rule, group: str) -> bool:
    return ALL in rule.api_groups or group in rule.api_groups


def _resource_matches(rule: Rule, resource: str, subresource: str) -> bool:
    if ALL in rule.resources:
        return True
    if not subresource:
        return resource in rule.resources
    return f"{resource}/{subresource}" in rule.resources or f"*/{subresource}" in rule.resources


def _name_matches(rule: Rule, name: str) -> bool:
    if not rule.resource_names:
        return True
    return bool(name) and name in rule.resource_names


def _url_matches(rule: Rule, path: str) -> bool:
    for url in rule.non_resource_urls:
        if url in (ALL, path) or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def allows(rule: Rule, attrs: Attributes) -> bool:
    """Does `rule` allow the request `attrs` describes?"""
    if not _verb_matches(rule, attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    return (_group_matches(rule, attrs.group) and _resource_matches(rule, attrs.resource, attrs.subresource)
            and _name_matches(rule, attrs.name))


def could_match(rule: Rule, attrs: Attributes) -> bool:
    """Could `rule` allow some verb on what `attrs` addresses (verbs and names aside)?"""
    if not attrs.resource_request:
        return bool(rule.non_resource_urls) and _url_matches(rule, attrs.path)
    return _group_matches(rule, attrs.group) and _resource_matches(rule, attrs.resource, attrs.subresource)


def any_allows(rules: Iterable[Rule], attrs: Attributes) -> bool:
    return any(allows(r, attrs) for r in rules)


def covers(owner: Iterable[Rule], requested: Rule) -> bool:
    """Do `owner`'s rules together grant everything `requested` grants? (escalation check)

    `requested` is broken into single (verb, group, resource, name) / (verb, url) grants and
    each must be allowed by one of `owner`'s rules, as kube's `validation.Covers` does."""
    owned = list(owner)
    verbs = requested.verbs or frozenset()
    for verb in verbs:
        for url in requested.non_resource_urls:
            if not any(_verb_matches(r, verb) and _url_covers(r, url) for r in owned):
                return False
        for group in requested.api_groups:
            for resource in requested.resources:
                names = requested.resource_names or frozenset({""})
                for name in names:
                    if not any(_grant_covers(r, verb, group, resource, name) for r in owned):
                        return False
    return True


def _url_covers(rule: Rule, url: str) -> bool:
    for owned in rule.non_resource_urls:
        if owned in (ALL, url) or (owned.endswith("*") and url.startswith(owned[:-1])):
            return True
    return False


def _grant_covers(rule: Rule, verb: str, group: str, resource: str, name: str) -> bool:
    if not (_verb_matches(rule, verb) and (ALL in rule.api_groups or group in rule.api_groups)):
        return False
    sub_wildcard = "/" in resource and f"*/{resource.split('/', 1)[1]}" in rule.resources
    if ALL not in rule.resources and resource not in rule.resources and not sub_wildcard:
        return False
    if rule.resource_names:
        return bool(name) and name in rule.resource_names
    return True
