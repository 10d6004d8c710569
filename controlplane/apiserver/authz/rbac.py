"""The RBAC authorizer: Roles, ClusterRoles and their bindings, read from the datastore.

Everything it needs is an in-memory index built from the stored rbac.authorization.k8s.io
objects the first time it is asked and thrown away when any of them changes (the datastore
tells every listener about each committed batch). Per user (name + groups) the rules that
apply cluster-wide and per namespace are computed once and kept until the next change, so
a decision costs a dict lookup and a short rule scan.

ClusterRoles with an `aggregationRule` get the union of the rules of the ClusterRoles its
selectors match (recursively: `admin` takes `edit`, which takes `view`), as kube's
clusterrole-aggregation controller writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from controlplane.apiserver.authz.kinds import BINDINGS, CLUSTER_BINDINGS, CLUSTER_ROLES, GROUP, ROLES
from controlplane.apiserver.authz.rules import Attributes, Rule, allows, could_match, parse_rules
from controlplane.apiserver.datastore import Event

Items = Callable[[str], Iterable[tuple[str, Any]]]
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class Decision:
    """`allowed`; otherwise no opinion (the next authorizer, or a denial). `reason` for reviews."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class Binding:
    kind: str  # RoleBinding | ClusterRoleBinding
    namespace: str
    name: str
    subjects: tuple[tuple[str, str, str], ...]  # (kind, name, namespace)
    role_kind: str
    role_name: str

    def matches(self, user: str, groups: tuple[str, ...]) -> str:
        """The subject that makes this binding apply to the user, as kube words it, or ''."""
        for kind, name, namespace in self.subjects:
            if kind == "User" and name == user:
                return f'User "{name}"'
            if kind == "Group" and name in groups:
                return f'Group "{name}"'
            if kind == "ServiceAccount" and user == f"system:serviceaccount:{namespace or self.namespace}:{name}":
                return f'ServiceAccount "{name}/{namespace or self.namespace}"'
        return ""


@dataclass
class UserRules:
    """The rules that apply to one user: cluster-wide ones and each namespace's own."""

    cluster: list[tuple[Rule, str]] = field(default_factory=list)
    namespaced: dict[str, list[tuple[Rule, str]]] = field(default_factory=dict)
    _joined: dict[str, list[tuple[Rule, str]]] = field(default_factory=dict)
    _candidates: dict[tuple[str, bool, str, str, str], list[tuple[Rule, str]]] = field(default_factory=dict)

    def candidates(self, attrs: Attributes) -> list[tuple[Rule, str]]:
        """The rules that could allow a request to this (namespace, group, resource): the
        decision then checks verbs and names on one or two rules instead of all of them."""
        key = (attrs.namespace, attrs.resource_request, attrs.group,
               attrs.resource if attrs.resource_request else attrs.path, attrs.subresource)
        found = self._candidates.get(key)
        if found is None:
            if len(self._candidates) > 10_000:
                self._candidates.clear()
            found = self._candidates[key] = [(r, why) for r, why in self.for_namespace(attrs.namespace)
                                             if could_match(r, attrs)]
        return found

    def for_namespace(self, namespace: str) -> list[tuple[Rule, str]]:
        if not namespace:
            return self.cluster
        joined = self._joined.get(namespace)
        if joined is None:
            if len(self._joined) > 1000:
                self._joined.clear()
            joined = self._joined[namespace] = self.cluster + self.namespaced.get(namespace, [])
        return joined


def selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions) against `labels`; an empty or
    malformed selector matches nothing, as aggregation treats it."""
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


class Snapshot:
    """The RBAC objects as they are now, indexed for evaluation."""

    def __init__(self, items: Items) -> None:
        raw_cluster_roles = {key.split("/", 1)[1]: obj for key, obj in items(f"{GROUP}/{CLUSTER_ROLES}")}
        self.cluster_roles = aggregate(raw_cluster_roles)
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        for key, obj in items(f"{GROUP}/{ROLES}"):
            ns, name = key.split("/", 1)
            self.roles[(ns, name)] = parse_rules(obj.get("rules"))
        self.cluster_bindings = [_binding("ClusterRoleBinding", key, obj)
                                 for key, obj in items(f"{GROUP}/{CLUSTER_BINDINGS}")]
        self.bindings = [_binding("RoleBinding", key, obj) for key, obj in items(f"{GROUP}/{BINDINGS}")]

    def role_rules(self, binding: Binding) -> tuple[Rule, ...]:
        if binding.role_kind == "ClusterRole":
            return self.cluster_roles.get(binding.role_name, ())
        return self.roles.get((binding.namespace, binding.role_name), ())

    def rules_of(self, user: str, groups: tuple[str, ...]) -> UserRules:
        out = UserRules()
        for b in self.cluster_bindings:
            subject = b.matches(user, groups)
            if subject:
                why = f'ClusterRoleBinding "{b.name}" of ClusterRole "{b.role_name}" to {subject}'
                out.cluster.extend((r, why) for r in self.role_rules(b))
        for b in self.bindings:
            subject = b.matches(user, groups)
            if subject:
                why = f'RoleBinding "{b.name}/{b.namespace}" of {b.role_kind} "{b.role_name}" to {subject}'
                out.namespaced.setdefault(b.namespace, []).extend((r, why) for r in self.role_rules(b))
        return out


def _binding(kind: str, key: str, obj: dict[str, Any]) -> Binding:
    ns, name = key.split("/", 1)
    ref = obj.get("roleRef") or {}
    subjects = tuple((str(s.get("kind", "")), str(s.get("name", "")), str(s.get("namespace") or ""))
                     for s in obj.get("subjects") or [] if isinstance(s, dict))
    return Binding(kind, ns, name, subjects, str(ref.get("kind", "")), str(ref.get("name", "")))


def aggregate(raw: dict[str, dict[str, Any]]) -> dict[str, tuple[Rule, ...]]:
    done: dict[str, tuple[Rule, ...]] = {}

    def resolve(name: str, visiting: frozenset[str]) -> tuple[Rule, ...]:
        if name in done:
            return done[name]
        obj = raw[name]
        selectors = ((obj.get("aggregationRule") or {}).get("clusterRoleSelectors")) or []
        if not selectors or name in visiting:
            rules = parse_rules(obj.get("rules"))
        else:
            merged: list[Rule] = []
            for other, other_obj in sorted(raw.items()):
                labels = (other_obj.get("metadata") or {}).get("labels") or {}
                if other != name and any(selector_matches(s, labels) for s in selectors):
                    for r in resolve(other, visiting | {name}):
                        if r not in merged:
                            merged.append(r)
            rules = tuple(merged)
        if name not in visiting:
            done[name] = rules
        return rules

    for n in raw:
        resolve(n, frozenset())
    return done


class RbacAuthorizer:
    """Decides from RBAC objects; `items(resource)` lists `(key, object)` of a storage resource."""

    def __init__(self, items: Items) -> None:
        self._items = items
        self._snapshot: Snapshot | None = None
        self._users: dict[tuple[str, tuple[str, ...]], UserRules] = {}

    def on_events(self, events: list[Event]) -> None:
        """Datastore listener: any RBAC change invalidates what was computed."""
        if any(e.resource.startswith(GROUP + "/") for e in events):
            self.invalidate()

    def invalidate(self) -> None:
        self._snapshot = None
        self._users = {}

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = Snapshot(self._items)
        return self._snapshot

    def user_rules(self, user: str, groups: tuple[str, ...]) -> UserRules:
        key = (user, groups)
        found = self._users.get(key)
        if found is None:
            if len(self._users) >= _CACHE_LIMIT:
                self._users = {}
            found = self._users[key] = self.snapshot.rules_of(user, groups)
        return found

    def authorize(self, attrs: Attributes) -> Decision:
        for rule, why in self.user_rules(attrs.user, attrs.groups).candidates(attrs):
            if allows(rule, attrs):
                return Decision(True, f"RBAC: allowed by {why}")
        return Decision(False)

    def rules_for(self, user: str, groups: tuple[str, ...], namespace: str) -> list[Rule]:
        seen: list[Rule] = []
        for rule, _why in self.user_rules(user, groups).for_namespace(namespace):
            if rule not in seen:
                seen.append(rule)
        return seen
