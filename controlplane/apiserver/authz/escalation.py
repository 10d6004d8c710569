"""Escalation prevention, as kube-apiserver's RBAC storage does it: nobody creates or updates
a Role or ClusterRole granting more than they hold, nor binds one, unless they may
`escalate` roles (for the first) or `bind` that role (for the second).

The API service calls `EscalationCheck` on every write it validates (`ApiService.write_checks`);
the requesting user is the one the authorization middleware put in `REQUEST_USER` (writes
the server makes itself have none and are not checked).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from controlplane.apiserver import errors
from controlplane.apiserver.authz.authorizer import Authorizer
from controlplane.apiserver.authz.kinds import BINDINGS, CLUSTER_BINDINGS, CLUSTER_ROLES, GROUP, ROLES
from controlplane.apiserver.authz.rules import Attributes, Rule, covers, parse_rules
from controlplane.apiserver.resources import ResourceInfo

REQUEST_USER: ContextVar[tuple[str, tuple[str, ...]] | None] = ContextVar("request_user", default=None)
_ALL = Rule(verbs=frozenset({"*"}), api_groups=frozenset({"*"}), resources=frozenset({"*"}))


class EscalationCheck:
    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    def __call__(self, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if info.group != GROUP or info.plural not in (ROLES, CLUSTER_ROLES, BINDINGS, CLUSTER_BINDINGS):
            return
        who = REQUEST_USER.get()
        if who is None:
            return
        user, groups = who
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if info.plural in (ROLES, CLUSTER_ROLES):
            self._role(info, user, groups, namespace, name, obj)
        else:
            self._binding(info, user, groups, namespace, name, obj)

    def _may(self, user: str, groups: tuple[str, ...], verb: str, resource: str, namespace: str, name: str) -> bool:
        attrs = Attributes(user, groups, verb, group=GROUP, version="v1", resource=resource, namespace=namespace,
                           name=name)
        return self.authorizer.authorize(attrs).allowed

    def _role(self, info: ResourceInfo, user: str, groups: tuple[str, ...], namespace: str, name: str,
              obj: dict[str, Any]) -> None:
        if self._may(user, groups, "escalate", info.plural, namespace, name):
            return
        held = self.authorizer.rules_for(user, groups, namespace)
        wanted = list(parse_rules(obj.get("rules")))
        if (obj.get("aggregationRule") or {}).get("clusterRoleSelectors"):
            wanted.append(_ALL)  # what an aggregated role grants is not known here: cluster-admin only
        missing = [r for r in wanted if not covers(held, r)]
        if missing:
            raise _refused(info, name, user, groups, missing)

    def _binding(self, info: ResourceInfo, user: str, groups: tuple[str, ...], namespace: str, name: str,
                 obj: dict[str, Any]) -> None:
        ref = obj.get("roleRef") or {}
        kind, role = str(ref.get("kind") or ""), str(ref.get("name") or "")
        role_resource = CLUSTER_ROLES if kind == "ClusterRole" else ROLES
        if self._may(user, groups, "bind", role_resource, namespace, role):
            return
        snapshot = self.authorizer.rbac.snapshot
        if kind == "ClusterRole":
            granted = snapshot.cluster_roles.get(role)
        else:
            granted = snapshot.roles.get((namespace, role))
        if granted is None:
            raise errors.not_found(role_resource, GROUP, role)
        held = self.authorizer.rules_for(user, groups, namespace)
        missing = [r for r in granted if not covers(held, r)]
        if missing:
            raise _refused(info, name, user, groups, missing)


def _kube_rule(rule: Rule) -> str:
    """A PolicyRule as kube-apiserver prints it in escalation errors."""
    def q(values: frozenset[str]) -> str:
        return "[" + " ".join(f'"{v}"' for v in sorted(values)) + "]"

    parts = []
    if rule.api_groups or rule.resources:
        parts += [f"APIGroups:{q(rule.api_groups)}", f"Resources:{q(rule.resources)}"]
    if rule.resource_names:
        parts.append(f"ResourceNames:{q(rule.resource_names)}")
    if rule.non_resource_urls:
        parts.append(f"NonResourceURLs:{q(rule.non_resource_urls)}")
    parts.append(f"Verbs:{q(rule.verbs)}")
    return "{" + ", ".join(parts) + "}"


def _refused(info: ResourceInfo, name: str, user: str, groups: tuple[str, ...], missing: list[Rule]) -> errors.ApiError:
    shown = "\n".join(_kube_rule(r) for r in missing[:10])
    message = (f'{info.plural}.{GROUP} "{name}" is forbidden: user "{user}" (groups={list(groups)}) is attempting '
               f"to grant RBAC permissions not currently held:\n{shown}")
    return errors.ApiError(403, "Forbidden", message, {"name": name, "group": GROUP, "kind": info.plural})
