"""The four kinds of `rbac.authorization.k8s.io/v1` as built-in resources: Role and
RoleBinding (namespaced), ClusterRole and ClusterRoleBinding (cluster-wide), with the
structural schemas that validate them (a rule needs verbs; a binding needs a roleRef naming a
Role or ClusterRole) and kubectl's columns."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.builtins import AGE_COLUMN, builtin_info, obj_schema, root_schema
from controlplane.apiserver.resources import Column, ResourceInfo

GROUP, VERSION = "rbac.authorization.k8s.io", "v1"
ROLES, CLUSTER_ROLES = "roles", "clusterroles"
BINDINGS, CLUSTER_BINDINGS = "rolebindings", "clusterrolebindings"

_S: dict[str, Any] = {"type": "string"}
_STRS: dict[str, Any] = {"type": "array", "items": _S}
_RULE = obj_schema({"verbs": _STRS, "apiGroups": _STRS, "resources": _STRS, "resourceNames": _STRS,
                    "nonResourceURLs": _STRS}, required=["verbs"])
_SELECTOR = obj_schema({
    "matchLabels": {"type": "object", "additionalProperties": _S},
    "matchExpressions": {"type": "array", "items": obj_schema(
        {"key": _S, "operator": _S, "values": _STRS}, required=["key", "operator"])},
})
ROLE_SCHEMA = root_schema({"rules": {"type": "array", "items": _RULE}})
CLUSTER_ROLE_SCHEMA = root_schema({
    "rules": {"type": "array", "items": _RULE},
    "aggregationRule": obj_schema({"clusterRoleSelectors": {"type": "array", "items": _SELECTOR}}),
})
_SUBJECT = obj_schema({"kind": {"type": "string", "enum": ["User", "Group", "ServiceAccount"]}, "apiGroup": _S,
                       "name": _S, "namespace": _S}, required=["kind", "name"])
_ROLE_REF = obj_schema({"apiGroup": _S, "kind": {"type": "string", "enum": ["Role", "ClusterRole"]}, "name": _S},
                       required=["apiGroup", "kind", "name"])
BINDING_SCHEMA = root_schema({"subjects": {"type": "array", "items": _SUBJECT}, "roleRef": _ROLE_REF},
                             required=["roleRef"])


def _role_ref(obj: dict[str, Any]) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _subjects(kind: str) -> Any:
    def get(obj: dict[str, Any]) -> str:
        return ",".join(s.get("name", "") for s in obj.get("subjects") or [] if s.get("kind") == kind)
    return get


def rbac_resources() -> list[ResourceInfo]:
    owner_keys = {"metadata.ownerReferences": "uid", "metadata.finalizers": ""}
    created = Column("Created At", compute=lambda o: (o.get("metadata") or {}).get("creationTimestamp"))
    binding_columns = [Column("Role", compute=_role_ref), AGE_COLUMN,
                       Column("Users", compute=_subjects("User"), priority=1),
                       Column("Groups", compute=_subjects("Group"), priority=1),
                       Column("ServiceAccounts", compute=_subjects("ServiceAccount"), priority=1)]
    return [
        builtin_info(GROUP, VERSION, "Role", ROLES, True, ROLE_SCHEMA, columns=[created], merge_keys=owner_keys),
        builtin_info(GROUP, VERSION, "ClusterRole", CLUSTER_ROLES, False, CLUSTER_ROLE_SCHEMA, columns=[created],
                     merge_keys=owner_keys),
        builtin_info(GROUP, VERSION, "RoleBinding", BINDINGS, True, BINDING_SCHEMA, columns=binding_columns,
                     merge_keys=owner_keys),
        builtin_info(GROUP, VERSION, "ClusterRoleBinding", CLUSTER_BINDINGS, False, BINDING_SCHEMA,
                     columns=binding_columns, merge_keys=owner_keys),
    ]
