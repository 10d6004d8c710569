"""rbac.authorization.k8s.io/v1 messages (k8s.io/api/rbac/v1 `generated.proto`): Role,
ClusterRole, RoleBinding, ClusterRoleBinding and what they contain. `keep=True` marks fields
serialized without `omitempty`."""

from __future__ import annotations

from controlplane.apiserver.protobuf.schema import m, mapof, message, rep, s

OBJECT = "ObjectMeta"

message("PolicyRule", rep(1, "verbs", "string"), rep(2, "apiGroups", "string"), rep(3, "resources", "string"),
        rep(4, "resourceNames", "string"), rep(5, "nonResourceURLs", "string"))
message("RbacLabelSelector", mapof(1, "matchLabels", "string"),
        rep(2, "matchExpressions", "RbacLabelSelectorRequirement"))
message("RbacLabelSelectorRequirement", s(1, "key", keep=True), s(2, "operator", keep=True),
        rep(3, "values", "string"))
message("AggregationRule", rep(1, "clusterRoleSelectors", "RbacLabelSelector"))
message("Role", m(1, "metadata", OBJECT), rep(2, "rules", "PolicyRule"))
message("ClusterRole", m(1, "metadata", OBJECT), rep(2, "rules", "PolicyRule"),
        m(3, "aggregationRule", "AggregationRule"))
message("Subject", s(1, "kind", keep=True), s(2, "apiGroup"), s(3, "name", keep=True), s(4, "namespace"))
message("RoleRef", s(1, "apiGroup", keep=True), s(2, "kind", keep=True), s(3, "name", keep=True))
message("RoleBinding", m(1, "metadata", OBJECT), rep(2, "subjects", "Subject"), m(3, "roleRef", "RoleRef"))
message("ClusterRoleBinding", m(1, "metadata", OBJECT), rep(2, "subjects", "Subject"), m(3, "roleRef", "RoleRef"))
