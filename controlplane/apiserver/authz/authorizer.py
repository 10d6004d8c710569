"""The server's authorizer chain, in kube-apiserver's order: `system:masters` is always
allowed (the privileged group), then the node authorizer, then RBAC; nothing allowing means
denied. One object answers both requests (the middleware) and access reviews."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controlplane.apiserver.authz.node import NODES_GROUP, NodeAuthorizer
from controlplane.apiserver.authz.rbac import Decision, RbacAuthorizer
from controlplane.apiserver.authz.rules import Attributes, Rule
from controlplane.apiserver.datastore import Datastore

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"


def with_authenticated(groups: Iterable[str]) -> tuple[str, ...]:
    """Every authenticated identity is also in `system:authenticated`, as in Kubernetes."""
    out = tuple(groups)
    return out if AUTHENTICATED in out else (*out, AUTHENTICATED)


class Authorizer:
    def __init__(self, rbac: RbacAuthorizer, node: NodeAuthorizer) -> None:
        self.rbac = rbac
        self.node = node

    @classmethod
    def over(cls, store: Datastore) -> Authorizer:
        """Authorizers reading `store`'s committed objects (and told when RBAC objects change)."""
        def items(resource: str) -> Iterable[tuple[str, dict[str, Any]]]:
            return ((k, s.obj) for k, s in store.items(resource))

        def get(resource: str, key: str) -> dict[str, Any] | None:
            found = store.get(resource, key)
            return found.obj if found is not None else None

        def in_namespace(resource: str, namespace: str) -> Iterable[dict[str, Any]]:
            return (s.obj for _k, s in store.items(resource, namespace or None))

        rbac = RbacAuthorizer(items)
        store.subscribe(rbac.on_events)
        return cls(rbac, NodeAuthorizer(get, in_namespace))

    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS in attrs.groups:
            return Decision(True, f'allowed: the user is in the group "{MASTERS}"')
        if NODES_GROUP not in attrs.groups:  # the node authorizer has an opinion only on nodes
            return self.rbac.authorize(attrs)
        node = self.node.authorize(attrs)
        if node.allowed:
            return node
        decision = self.rbac.authorize(attrs)
        if decision.allowed:
            return decision
        return Decision(False, node.reason)

    def rules_for(self, user: str, groups: tuple[str, ...], namespace: str) -> list[Rule]:
        if MASTERS in groups:
            return [Rule(verbs=frozenset({"*"}), api_groups=frozenset({"*"}), resources=frozenset({"*"})),
                    Rule(verbs=frozenset({"*"}), non_resource_urls=frozenset({"*"}))]
        return self.rbac.rules_for(user, groups, namespace)
