"""The ClusterRoles and ClusterRoleBindings every server has, written at start.

Kubernetes' user-facing roles — `cluster-admin`, `admin`, `edit`, `view`, the last three built
by aggregation (`rbac.authorization.k8s.io/aggregate-to-{admin,edit,view}` labels) — with the
virtualization kinds aggregated into them as DVP's roles do (`d8:use:capability:module:
virtualization:{view,edit}`: VMs, disks, images, IP addresses, block device attachments and
operations; USBDevices readable, written by the controllers only; consoles and VNC for editors;
classes, cluster images and NodeUSBDevices are cluster-wide and so readable only through a
ClusterRoleBinding). `system:basic-user` and `system:discovery` let
every authenticated identity ask what it may do and read discovery; `system:monitoring`
(bound to the group of that name) lets a scraper read `/metrics`; `system:masters` is
`cluster-admin`. The server's own components get least-privilege roles: the controllers
work the platform's kinds (and the Secrets, Nodes, Leases and Events they need), DVCR only
reviews tokens. Node handlers are confined by the node authorizer instead (`node.py`).

A default whose `rbac.authorization.kubernetes.io/autoupdate` annotation is `"true"` is put
back as shipped at every start; set it to `"false"` to keep local changes.
"""

from __future__ import annotations

from typing import Any

GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
DVP_GROUP, INTERNAL_GROUP = "virtualization.deckhouse.io", "internal.virtualization.deckhouse.io"
SUBRESOURCES_GROUP = "subresources.virtualization.deckhouse.io"
CONTROLLERS_USER, DVCR_USER = "system:dvp-controllers", "system:dvcr"

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
DVP_NAMESPACED = ["virtualmachines", "virtualdisks", "virtualimages", "virtualmachineipaddresses",
                  "virtualmachineblockdeviceattachments", "virtualmachineoperations", "virtualmachinemacaddresses",
                  "virtualmachinepools"]
DVP_READ_ONLY = ["virtualmachineipaddressleases", "virtualmachinemacaddressleases", "clustervirtualimages",
                 "virtualmachineclasses", "usbdevices", "nodeusbdevices"]
DVP_STATUS = [f"{r}/status" for r in DVP_NAMESPACED]
DVP_SCALE = ["virtualmachinepools/scale"]  # kinds with a `scale` subresource (kubectl scale, autoscalers)


def _rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"verbs": verbs, "apiGroups": groups, "resources": resources}
    if names:
        rule["resourceNames"] = names
    return rule


def _urls(verbs: list[str], urls: list[str]) -> dict[str, Any]:
    return {"verbs": verbs, "nonResourceURLs": urls}


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
            "annotations": {AUTOUPDATE: "true"}}


def _role(name: str, rules: list[dict[str, Any]], *, labels: dict[str, str] | None = None,
          aggregate_from: str = "") -> dict[str, Any]:
    role: dict[str, Any] = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": _meta(name, labels),
                            "rules": rules}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE + aggregate_from: "true"}}]}
    return role


def _binding(name: str, role: str, subjects: list[tuple[str, str]]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": k, "apiGroup": GROUP, "name": n} for k, n in subjects]}


def cluster_roles() -> list[dict[str, Any]]:
    to = AGGREGATE
    return [
        _role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])]),
        _role("admin", [], aggregate_from="admin"),
        _role("edit", [], labels={to + "admin": "true"}, aggregate_from="edit"),
        _role("view", [], labels={to + "edit": "true"}, aggregate_from="view"),
        _role("system:aggregate-to-admin", [
            _rule([*READ, *WRITE], [GROUP], ["roles", "rolebindings"]),
            _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
        ], labels={to + "admin": "true"}),
        _role("system:aggregate-to-edit", [
            _rule(WRITE, [""], ["configmaps", "secrets", "services", "endpoints", "serviceaccounts"]),
            _rule(["create"], [""], ["serviceaccounts/token"]),
            _rule([*READ], [""], ["secrets"]),
        ], labels={to + "edit": "true"}),
        _role("system:aggregate-to-view", [
            _rule(READ, [""], ["configmaps", "endpoints", "events", "services", "namespaces/status",
                               "serviceaccounts"]),
            _rule(["get"], [""], ["namespaces"]),
            _rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        ], labels={to + "view": "true"}),
        _role("d8:use:capability:module:virtualization:view", [
            _rule(READ, [DVP_GROUP], [*DVP_NAMESPACED, *DVP_READ_ONLY, *DVP_STATUS, *DVP_SCALE]),
        ], labels={to + "view": "true"}),
        _role("d8:use:capability:module:virtualization:edit", [
            _rule(WRITE, [DVP_GROUP], DVP_NAMESPACED),
            _rule(["get", "patch", "update"], [DVP_GROUP], DVP_SCALE),
            _rule(["get", "create", "update", "patch"], [SUBRESOURCES_GROUP],
                  ["virtualmachines/console", "virtualmachines/vnc", "virtualmachinepools/scaledownwith"]),
        ], labels={to + "edit": "true"}),
        _role("system:aggregated-metrics-reader", [_rule(READ, ["metrics.k8s.io"], ["pods", "nodes"])],
              labels={to + "view": "true", to + "edit": "true", to + "admin": "true"}),
        _role("system:monitoring", [_urls(["get"], ["/metrics", "/metrics/*", "/healthz", "/healthz/*", "/livez",
                                                    "/livez/*", "/readyz", "/readyz/*"]),
                                    _rule(["get"], [""], ["nodes/metrics"])]),  # node handlers' /metrics
        _role("system:basic-user", [
            _rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
        ]),
        _role("system:discovery", [_urls(["get"], [
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/version", "/version/",
            "/openapi", "/openapi/*"])]),
        _role("system:dvp:controllers", [
            # every virtualization kind and its status: the controllers own them all (VMs, disks,
            # images, IP/MAC addresses, VMOPs incl. migrate/restore/clone, disk and VM snapshots and
            # snapshot operations, the internal instances and volumes they place on nodes)
            _rule(["*"], [DVP_GROUP, INTERNAL_GROUP], ["*"]),
            # Secrets: cloud-init user data they check, the Secrets VM snapshots keep (restore reads them)
            _rule([*READ, "create", "update", "patch", "delete"], [""], ["secrets"]),
            # node lifecycle: NotReady on missed heartbeats, taints; nodes register themselves
            _rule([*READ, "patch", "update"], [""], ["nodes", "nodes/status"]),
            _rule([*READ, "create"], [""], ["namespaces"]),
            _rule([*READ, "create", "update", "patch"], [""], ["events", "configmaps"]),
            # leader election (d8-virtualization/dvp-controllers) and node heartbeats (kube-node-lease, read)
            _rule([*READ, "create", "update", "patch", "delete"], ["coordination.k8s.io"], ["leases"]),
            _rule(READ, ["apiextensions.k8s.io"], ["customresourcedefinitions"]),
            _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            _urls(["get"], ["/metrics"]),
        ]),
        _role("system:dvp:dvcr", [
            _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        ]),
    ]


def cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _binding("cluster-admin", "cluster-admin", [("Group", "system:masters")]),
        _binding("system:basic-user", "system:basic-user", [("Group", "system:authenticated")]),
        _binding("system:discovery", "system:discovery", [("Group", "system:authenticated")]),
        _binding("system:monitoring", "system:monitoring", [("Group", "system:monitoring")]),
        _binding("system:dvp:controllers", "system:dvp:controllers", [("User", CONTROLLERS_USER)]),
        _binding("system:dvp:dvcr", "system:dvp:dvcr", [("User", DVCR_USER)]),
    ]
