"""The authorizer chain decided table by table: each default role and the node identity
against allowed and denied requests, rule matching (subresources, resourceNames,
nonResourceURLs, wildcards), aggregation, escalation coverage, kube's 403 wording, the
request-to-verb mapping and audit rotation."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from controlplane.apiserver import errors
from controlplane.apiserver.authz import defaults
from controlplane.apiserver.authz.audit import AuditLog, AuditSettings, event
from controlplane.apiserver.authz.authorizer import Authorizer, with_authenticated
from controlplane.apiserver.authz.escalation import REQUEST_USER, EscalationCheck
from controlplane.apiserver.authz.kinds import rbac_resources
from controlplane.apiserver.authz.node import NodeAuthorizer
from controlplane.apiserver.authz.rbac import RbacAuthorizer
from controlplane.apiserver.authz.requests import attributes_of, forbidden
from controlplane.apiserver.authz.rules import Attributes, Rule, allows, covers, parse_rule

DVP = "virtualization.deckhouse.io"
INTERNAL = "internal.virtualization.deckhouse.io"
RBAC = "rbac.authorization.k8s.io"


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: list[tuple[str, str]],
             namespace: str = "") -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
            "subjects": [{"kind": k, "name": n, "apiGroup": RBAC} for k, n in subjects]}


def _instance(ns: str, name: str, node: str, secret: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "labels": {f"{DVP}/node": node}},
            "spec": {"nodeName": node, "cloudInit": {"userDataSecretRef": {"name": secret}}}}


class FakeStore:
    """`(storage resource) -> {key: object}` with the default roles and a few bindings."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, dict[str, Any]]] = {}
        for cluster_role in defaults.cluster_roles():
            self.put(f"{RBAC}/clusterroles", "", cluster_role)
        for b in defaults.cluster_role_bindings():
            self.put(f"{RBAC}/clusterrolebindings", "", b)
        for user, role in (("alice", "admin"), ("bob", "edit"), ("carol", "view")):
            self.put(f"{RBAC}/rolebindings", "team-a",
                     _binding("RoleBinding", f"{user}-{role}", "ClusterRole", role, [("User", user)], "team-a"))
        self.put(f"{RBAC}/roles", "team-a", {"metadata": {"name": "cm-reader", "namespace": "team-a"}, "rules": [
            {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"]}]})
        self.put(f"{RBAC}/rolebindings", "team-a", _binding("RoleBinding", "devs-cm", "Role", "cm-reader",
                                                            [("Group", "devs")], "team-a"))
        self.put(f"{INTERNAL}/internalvirtualmachineinstances", "team-a", _instance("team-a", "vm-a", "node-a", "a-ud"))
        self.put(f"{INTERNAL}/internalvirtualmachineinstances", "team-a", _instance("team-a", "vm-b", "node-b", "b-ud"))

    def put(self, resource: str, namespace: str, obj: dict[str, Any]) -> None:
        self.data.setdefault(resource, {})[f"{namespace}/{obj['metadata']['name']}"] = obj

    def items(self, resource: str) -> Iterable[tuple[str, dict[str, Any]]]:
        return sorted(self.data.get(resource, {}).items())

    def get(self, resource: str, key: str) -> dict[str, Any] | None:
        return self.data.get(resource, {}).get(key)

    def in_namespace(self, resource: str, namespace: str) -> Iterable[dict[str, Any]]:
        return [o for k, o in self.data.get(resource, {}).items() if k.startswith(namespace + "/")]


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def authorizer(store: FakeStore) -> Authorizer:
    return Authorizer(RbacAuthorizer(store.items), NodeAuthorizer(store.get, store.in_namespace))


def _attrs(user: str, verb: str, resource: str = "", *, group: str = "", ns: str = "", name: str = "",
           sub: str = "", groups: tuple[str, ...] = (), path: str = "", selector: str = "") -> Attributes:
    if path:
        return Attributes(user, with_authenticated(groups), verb, resource_request=False, path=path)
    return Attributes(user, with_authenticated(groups), verb, group=group, resource=resource, subresource=sub,
                      namespace=ns, name=name, label_selector=selector)


NODE = ("system:nodes",)
CASES = [
    # (id, attributes, allowed)
    ("masters-anything", _attrs("root", "delete", "namespaces", name="x", groups=("system:masters",)), True),
    ("admin-rolebindings", _attrs("alice", "create", "rolebindings", group=RBAC, ns="team-a"), True),
    ("admin-secrets", _attrs("alice", "delete", "secrets", ns="team-a", name="s"), True),
    ("admin-other-ns", _attrs("alice", "get", "secrets", ns="team-b", name="s"), False),
    ("admin-no-nodes", _attrs("alice", "list", "nodes"), False),
    ("edit-create-vm", _attrs("bob", "create", "virtualmachines", group=DVP, ns="team-a"), True),
    ("edit-console", _attrs("bob", "get", "virtualmachines", group=f"subresources.{DVP}", ns="team-a", name="v",
                            sub="console"), True),
    ("edit-read-secrets", _attrs("bob", "get", "secrets", ns="team-a", name="s"), True),
    ("edit-no-rolebindings", _attrs("bob", "create", "rolebindings", group=RBAC, ns="team-a"), False),
    ("edit-no-vm-status-write", _attrs("bob", "update", "virtualmachines", group=DVP, ns="team-a", name="v",
                                       sub="status"), False),
    ("edit-scale-vmpool", _attrs("bob", "patch", "virtualmachinepools", group=DVP, ns="team-a", name="p",
                                 sub="scale"), True),
    ("view-get-vmpool-scale", _attrs("carol", "get", "virtualmachinepools", group=DVP, ns="team-a", name="p",
                                     sub="scale"), True),
    ("view-no-vmpool-scale-write", _attrs("carol", "update", "virtualmachinepools", group=DVP, ns="team-a",
                                          name="p", sub="scale"), False),
    ("edit-no-internal", _attrs("bob", "list", "internalvirtualmachineinstances", group=INTERNAL, ns="team-a"), False),
    ("view-list-vms", _attrs("carol", "list", "virtualmachines", group=DVP, ns="team-a"), True),
    ("view-watch-disks", _attrs("carol", "watch", "virtualdisks", group=DVP, ns="team-a"), True),
    ("view-no-create", _attrs("carol", "create", "virtualmachines", group=DVP, ns="team-a"), False),
    ("view-no-secrets", _attrs("carol", "get", "secrets", ns="team-a", name="s"), False),
    ("view-no-console", _attrs("carol", "get", "virtualmachines", group=f"subresources.{DVP}", ns="team-a",
                               name="v", sub="console"), False),
    ("group-resource-name", _attrs("dan", "get", "configmaps", ns="team-a", name="settings", groups=("devs",)), True),
    ("group-other-name", _attrs("dan", "get", "configmaps", ns="team-a", name="other", groups=("devs",)), False),
    ("names-never-list", _attrs("dan", "list", "configmaps", ns="team-a", groups=("devs",)), False),
    ("anyone-can-i", _attrs("eve", "create", "selfsubjectaccessreviews", group="authorization.k8s.io"), True),
    ("anyone-discovery", _attrs("eve", "get", path="/apis/virtualization.deckhouse.io/v1alpha2"), True),
    ("anyone-not-metrics", _attrs("eve", "get", path="/metrics"), False),
    ("monitoring-metrics", _attrs("prom", "get", path="/metrics", groups=("system:monitoring",)), True),
    ("view-pod-metrics", _attrs("carol", "list", "pods", group="metrics.k8s.io", ns="team-a"), True),
    ("nobody-vms", _attrs("eve", "list", "virtualmachines", group=DVP, ns="team-a"), False),
    ("controllers-vms", _attrs(defaults.CONTROLLERS_USER, "update", "virtualmachines", group=DVP, ns="x", name="v",
                               sub="status"), True),
    ("controllers-secrets", _attrs(defaults.CONTROLLERS_USER, "get", "secrets", ns="x", name="s"), True),
    # what the wave's controllers use: snapshots and their operations, VMOP migrate/restore/clone on
    # instances, node lifecycle (Node status, node Leases), the Secrets a VM snapshot keeps
    ("controllers-vmsnapshot-status", _attrs(defaults.CONTROLLERS_USER, "update", "virtualmachinesnapshots", group=DVP,
                                             ns="x", name="s", sub="status"), True),
    ("controllers-vdsnapshot", _attrs(defaults.CONTROLLERS_USER, "delete", "virtualdisksnapshots", group=DVP,
                                      ns="x", name="s"), True),
    ("controllers-vmsop-status", _attrs(defaults.CONTROLLERS_USER, "patch", "virtualmachinesnapshotoperations",
                                        group=DVP, ns="x", name="o", sub="status"), True),
    ("controllers-instance-migration", _attrs(defaults.CONTROLLERS_USER, "patch", "internalvirtualmachineinstances",
                                              group=INTERNAL, ns="x", name="v"), True),
    ("controllers-node-status", _attrs(defaults.CONTROLLERS_USER, "update", "nodes", name="n", sub="status"), True),
    ("controllers-node-leases", _attrs(defaults.CONTROLLERS_USER, "watch", "leases", group="coordination.k8s.io",
                                       ns="kube-node-lease"), True),
    ("controllers-kept-secret", _attrs(defaults.CONTROLLERS_USER, "create", "secrets", ns="x"), True),
    ("controllers-no-node-delete", _attrs(defaults.CONTROLLERS_USER, "delete", "nodes", name="n"), False),
    ("controllers-no-rbac", _attrs(defaults.CONTROLLERS_USER, "create", "clusterrolebindings", group=RBAC), False),
    ("controllers-no-crd-write", _attrs(defaults.CONTROLLERS_USER, "delete", "customresourcedefinitions",
                                        group="apiextensions.k8s.io", name="x"), False),
    ("dvcr-tokenreview", _attrs(defaults.DVCR_USER, "create", "tokenreviews", group="authentication.k8s.io"), True),
    ("dvcr-no-secrets", _attrs(defaults.DVCR_USER, "list", "secrets"), False),
    # a node publishes its own NodeUSBDevices (`<node>-usb-...`, labelled with the node), no one else's
    ("node-creates-own-usb", _attrs("system:node:node-a", "create", "nodeusbdevices", group=DVP,
                                    name="node-a-usb-1-1-046d-c52b", groups=NODE), True),
    ("node-own-usb-status", _attrs("system:node:node-a", "update", "nodeusbdevices", group=DVP,
                                   name="node-a-usb-1-1-046d-c52b", sub="status", groups=NODE), True),
    ("node-deletes-own-usb", _attrs("system:node:node-a", "delete", "nodeusbdevices", group=DVP,
                                    name="node-a-usb-1-1-046d-c52b", groups=NODE), True),
    ("node-no-other-usb", _attrs("system:node:node-a", "update", "nodeusbdevices", group=DVP,
                                 name="node-b-usb-1-1-046d-c52b", sub="status", groups=NODE), False),
    ("node-lists-own-usb", _attrs("system:node:node-a", "list", "nodeusbdevices", group=DVP,
                                  selector=f"{DVP}/node=node-a", groups=NODE), True),
    ("node-no-list-all-usb", _attrs("system:node:node-a", "list", "nodeusbdevices", group=DVP, groups=NODE), False),
    ("node-no-usbdevices", _attrs("system:node:node-a", "get", "usbdevices", group=DVP, ns="team-a", name="x",
                                  groups=NODE), False),
    ("view-reads-usbdevices", _attrs("carol", "list", "usbdevices", group=DVP, ns="team-a"), True),
    ("edit-no-usbdevice-write", _attrs("bob", "create", "usbdevices", group=DVP, ns="team-a"), False),
    ("admin-no-nodeusbdevices", _attrs("alice", "update", "nodeusbdevices", group=DVP, name="n-usb-1"), False),
    ("node-own-node", _attrs("system:node:node-a", "patch", "nodes", name="node-a", sub="status", groups=NODE), True),
    ("node-other-node", _attrs("system:node:node-a", "patch", "nodes", name="node-b", groups=NODE), False),
    ("node-reads-nodes", _attrs("system:node:node-a", "get", "nodes", name="node-b", groups=NODE), True),
    ("node-own-lease", _attrs("system:node:node-a", "update", "leases", group="coordination.k8s.io",
                              ns="kube-node-lease", name="node-a", groups=NODE), True),
    ("node-other-lease", _attrs("system:node:node-a", "update", "leases", group="coordination.k8s.io",
                                ns="kube-node-lease", name="node-b", groups=NODE), False),
    ("node-own-instance", _attrs("system:node:node-a", "update", "internalvirtualmachineinstances", group=INTERNAL,
                                 ns="team-a", name="vm-a", sub="status", groups=NODE), True),
    # every node reads every instance (VM routes need where each VM runs), writes only its own
    ("node-reads-other-instance", _attrs("system:node:node-a", "get", "internalvirtualmachineinstances",
                                         group=INTERNAL, ns="team-a", name="vm-b", groups=NODE), True),
    ("node-watches-all-instances", _attrs("system:node:node-a", "watch", "internalvirtualmachineinstances",
                                          group=INTERNAL, groups=NODE), True),
    ("node-no-write-other-instance", _attrs("system:node:node-a", "patch", "internalvirtualmachineinstances",
                                            group=INTERNAL, ns="team-a", name="vm-b", sub="status", groups=NODE),
     False),
    ("node-no-delete-own-instance", _attrs("system:node:node-a", "delete", "internalvirtualmachineinstances",
                                           group=INTERNAL, ns="team-a", name="vm-a", groups=NODE), False),
    ("node-no-create-instance", _attrs("system:node:node-a", "create", "internalvirtualmachineinstances",
                                       group=INTERNAL, ns="team-a", groups=NODE), False),
    ("node-watch-own", _attrs("system:node:node-a", "watch", "internalvirtualdiskvolumes", group=INTERNAL,
                              selector=f"{DVP}/node=node-a", groups=NODE), True),
    ("node-watch-all", _attrs("system:node:node-a", "watch", "internalvirtualdiskvolumes", group=INTERNAL,
                              groups=NODE), False),
    ("node-referenced-secret", _attrs("system:node:node-a", "get", "secrets", ns="team-a", name="a-ud",
                                      groups=NODE), True),
    ("node-others-secret", _attrs("system:node:node-a", "get", "secrets", ns="team-a", name="b-ud", groups=NODE),
     False),
    ("node-list-secrets", _attrs("system:node:node-a", "list", "secrets", ns="team-a", groups=NODE), False),
    ("node-events", _attrs("system:node:node-a", "create", "events", ns="team-a", groups=NODE), True),
    ("node-no-vms", _attrs("system:node:node-a", "list", "virtualmachines", group=DVP, ns="team-a", groups=NODE),
     False),
    ("not-a-node", _attrs("system:node:node-a", "get", "secrets", ns="team-a", name="a-ud"), False),
]


@pytest.mark.parametrize(("attrs", "allowed"), [(a, ok) for _, a, ok in CASES], ids=[c[0] for c in CASES])
def test_decisions(authorizer: Authorizer, attrs: Attributes, allowed: bool) -> None:
    assert authorizer.authorize(attrs).allowed is allowed


def test_aggregation_follows_labels_added_later(store: FakeStore, authorizer: Authorizer) -> None:
    attrs = _attrs("carol", "list", "widgets", group="example.com", ns="team-a")
    assert not authorizer.authorize(attrs).allowed
    store.put(f"{RBAC}/clusterroles", "", {"metadata": {"name": "widgets-view", "labels": {
        "rbac.authorization.k8s.io/aggregate-to-view": "true"}}, "rules": [
        {"verbs": ["list"], "apiGroups": ["example.com"], "resources": ["widgets"]}]})
    authorizer.rbac.invalidate()
    assert authorizer.authorize(attrs).allowed
    assert authorizer.authorize(_attrs("alice", "list", "widgets", group="example.com", ns="team-a")).allowed


def test_migration_hands_an_instance_over_to_the_target(store: FakeStore, authorizer: Authorizer) -> None:
    """The source writes the instance while it is its own (the write that names the target is decided
    on the stored object); from then on only the target may write it."""
    patch = {"verb": "patch", "resource": "internalvirtualmachineinstances", "group": INTERNAL, "ns": "team-a",
             "name": "vm-a"}
    assert authorizer.authorize(_attrs("system:node:node-a", groups=NODE, **patch)).allowed
    store.put(f"{INTERNAL}/internalvirtualmachineinstances", "team-a", _instance("team-a", "vm-a", "node-b", "a-ud"))
    assert not authorizer.authorize(_attrs("system:node:node-a", groups=NODE, **patch)).allowed
    assert authorizer.authorize(_attrs("system:node:node-b", groups=NODE, **patch)).allowed


def test_non_resource_decisions_are_per_path(authorizer: Authorizer) -> None:
    assert not authorizer.authorize(_attrs("eve", "get", path="/metrics")).allowed  # first: nothing may match
    assert authorizer.authorize(_attrs("eve", "get", path="/version")).allowed
    assert authorizer.authorize(_attrs("eve", "get", path="/api")).allowed


def test_allowed_reason_names_the_binding(authorizer: Authorizer) -> None:
    decision = authorizer.authorize(_attrs("bob", "create", "virtualmachines", group=DVP, ns="team-a"))
    assert decision.reason == 'RBAC: allowed by RoleBinding "bob-edit/team-a" of ClusterRole "edit" to User "bob"'


@pytest.mark.parametrize(("rule", "attrs", "allowed"), [
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}, _attrs("u", "get", "pods", sub="log"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _attrs("u", "get", "pods", sub="log"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["*/status"]}, _attrs("u", "get", "nodes", sub="status"), True),
    ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, _attrs("u", "escalate", "roles", group=RBAC), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz/*"]}, _attrs("u", "get", path="/healthz/etcd"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, _attrs("u", "get", path="/healthz/etcd"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}, _attrs("u", "get", path="/secrets"), False),
], ids=["subresource", "not-subresource", "any-status", "wildcards", "url-prefix", "url-exact", "url-vs-resource"])
def test_rule_matching(rule: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert allows(parse_rule(rule), attrs) is allowed


def _r(**kw: list[str]) -> Rule:
    return parse_rule({"verbs": kw.pop("verbs"), **{k: v for k, v in kw.items()}})


@pytest.mark.parametrize(("owner", "wanted", "covered"), [
    ([_r(verbs=["*"], apiGroups=["*"], resources=["*"])], _r(verbs=["get"], apiGroups=["x"], resources=["y"]), True),
    ([_r(verbs=["get"], apiGroups=[""], resources=["secrets"])], _r(verbs=["get", "list"], apiGroups=[""],
                                                                     resources=["secrets"]), False),
    ([_r(verbs=["get"], apiGroups=[""], resources=["secrets"], resourceNames=["a"])],
     _r(verbs=["get"], apiGroups=[""], resources=["secrets"]), False),
    ([_r(verbs=["get"], apiGroups=[""], resources=["secrets"])],
     _r(verbs=["get"], apiGroups=[""], resources=["secrets"], resourceNames=["a"]), True),
    ([_r(verbs=["get"], apiGroups=[""], resources=["secrets"])], _r(verbs=["*"], apiGroups=[""], resources=["secrets"]),
     False),
    ([_r(verbs=["get"], nonResourceURLs=["/api/*"])], _r(verbs=["get"], nonResourceURLs=["/api/v1"]), True),
], ids=["all", "more-verbs", "names-narrower", "names-wider", "verb-wildcard", "url"])
def test_covers(owner: list[Rule], wanted: Rule, covered: bool) -> None:
    assert covers(owner, wanted) is covered


def test_escalation_check(store: FakeStore, authorizer: Authorizer) -> None:
    infos = {i.plural: i for i in rbac_resources()}
    check = EscalationCheck(authorizer)
    role = {"metadata": {"name": "r", "namespace": "team-a"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]}
    token = REQUEST_USER.set(("alice", with_authenticated(())))
    try:
        check(infos["roles"], role, None)  # admin holds it
        with pytest.raises(errors.ApiError) as refused:
            check(infos["roles"], {**role, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}]},
                  None)
        assert refused.value.code == 403 and "not currently held" in refused.value.message
        assert refused.value.message.endswith('{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}')
        check(infos["rolebindings"], _binding("RoleBinding", "b", "ClusterRole", "edit", [("User", "x")], "team-a"),
              None)
        with pytest.raises(errors.ApiError):
            check(infos["rolebindings"], _binding("RoleBinding", "b", "ClusterRole", "cluster-admin",
                                                  [("User", "x")], "team-a"), None)
    finally:
        REQUEST_USER.reset(token)
    check(infos["rolebindings"], _binding("RoleBinding", "b", "ClusterRole", "cluster-admin", [("User", "x")],
                                          "team-a"), None)  # the server's own writes are not checked


@pytest.mark.parametrize(("method", "path", "query", "verb", "resource", "sub", "name"), [
    ("GET", "/api/v1/namespaces/a/secrets", {}, "list", "secrets", "", ""),
    ("GET", "/api/v1/namespaces/a/secrets", {"watch": "true"}, "watch", "secrets", "", ""),
    ("GET", "/api/v1/namespaces/a/secrets/s", {}, "get", "secrets", "", "s"),
    ("DELETE", "/api/v1/namespaces/a/secrets", {}, "deletecollection", "secrets", "", ""),
    ("PUT", "/apis/x.io/v1/namespaces/a/things/t/status", {}, "update", "things", "status", "t"),
    ("PATCH", "/api/v1/namespaces/a", {}, "patch", "namespaces", "", "a"),
    ("POST", "/api/v1/namespaces", {}, "create", "namespaces", "", ""),
], ids=["list", "watch", "get", "deletecollection", "status", "namespace", "create-namespace"])
def test_request_attributes(method: str, path: str, query: dict[str, str], verb: str, resource: str, sub: str,
                            name: str) -> None:
    attrs = attributes_of(method, path, query, "u", ("g",))
    assert (attrs.verb, attrs.resource, attrs.subresource, attrs.name) == (verb, resource, sub, name)
    assert attrs.groups == ("g", "system:authenticated")


def test_non_resource_attributes() -> None:
    attrs = attributes_of("GET", "/healthz/", {}, "u", ())
    assert not attrs.resource_request and attrs.path == "/healthz" and attrs.verb == "get"


@pytest.mark.parametrize(("attrs", "message"), [
    (_attrs("dev", "list", "secrets", ns="b"),
     'secrets is forbidden: User "dev" cannot list resource "secrets" in API group "" in the namespace "b"'),
    (_attrs("dev", "get", "virtualmachines", group=DVP, ns="b", name="v", sub="console"),
     f'virtualmachines.{DVP} "v" is forbidden: User "dev" cannot get resource "virtualmachines/console" in API '
     f'group "{DVP}" in the namespace "b"'),
    (_attrs("dev", "list", "nodes"),
     'nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" at the cluster scope'),
    (_attrs("dev", "get", path="/metrics"), 'forbidden: User "dev" cannot get path "/metrics"'),
], ids=["namespaced", "subresource", "cluster", "path"])
def test_forbidden_message(attrs: Attributes, message: str) -> None:
    error = forbidden(attrs)
    assert (error.code, error.reason, error.message) == (403, "Forbidden", message)


def test_audit_rotates_and_keeps_mode(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", AuditSettings(max_bytes=2000, backups=2, max_buffered=1))
    attrs = _attrs("dev", "get", "secrets", ns="a", name="s")
    for _ in range(30):
        log.record(event(attrs, code=200, uri="/api/v1/namespaces/a/secrets/s", source="127.0.0.1",
                         user_agent="kubectl", received="", allowed=True, reason="r"))
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 2000 and p.stat().st_mode & 0o777 == 0o600
        line = json.loads(p.read_text().splitlines()[0])
        assert line["objectRef"] == {"resource": "secrets", "apiGroup": "", "apiVersion": "", "namespace": "a",
                                     "name": "s"}


@pytest.mark.parametrize("obj", [*defaults.cluster_roles(), *defaults.cluster_role_bindings()],
                         ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_default_objects_round_trip_through_protobuf(obj: dict[str, Any]) -> None:
    from controlplane.apiserver.protobuf import codec

    msg = codec.message_for(RBAC, "v1", obj["kind"])
    assert msg is not None
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind") and v != []}  # empty: not on the wire
    assert codec.decode_object(msg, codec.encode_object(msg, body)) == body
