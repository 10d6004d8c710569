"""The node authorizer: what a node handler's identity (`system:node:<name>` in
`system:nodes`) may do, decided from the objects themselves (kube's Node authorizer idea,
without its graph: the relations here are one lookup each).

A node may read every Node and write only its own (status included) and its own Lease in
`kube-node-lease`; read (get, list, watch) every internal instance, of any node — the VM
route reconciler (nodehandler/vmroutes.py) routes the addresses of VMs running elsewhere, so
it must know where every VM runs, and an instance holds only placement metadata, no secrets;
list and watch the internal volumes only through the label selector naming itself; write
(status, finalizers) only the instances and volumes whose `spec.nodeName` (or node label) is
itself before the write — which lets a live migration's source hand an instance and its
volumes over to the target (it rewrites `spec.nodeName`), after which only the target may
write them; read a Secret only when one of its instances references it
(`spec.cloudInit.userDataSecretRef`); list and watch its own NodeUSBDevices (label selector
naming itself) and create, read, update and delete only those whose name says they are its
own (`<node>-usb-...`, `api/usb.py`); record events; review tokens (console access). Anything
else gets no opinion here, so RBAC decides — and nothing is bound to `system:nodes` there
beyond discovery, so it is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from controlplane.api.internal import NODE_LABEL, placed_on
from controlplane.api.resources import INSTANCES, INTERNAL_GROUP, NODE_USB_DEVICES, VOLUMES
from controlplane.api.usb import owned_by
from controlplane.apiserver.authz.rbac import Decision
from controlplane.apiserver.authz.rules import Attributes

NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
LEASE_NAMESPACE = "kube-node-lease"
_READ = frozenset({"get", "list", "watch"})
_OWN_WRITE = frozenset({"get", "create", "update", "patch"})
_PLACED = {INSTANCES.plural, VOLUMES.plural}
_USB_WRITE = frozenset({"get", "create", "update", "patch", "delete"})

Get = Callable[[str, str], dict[str, Any] | None]  # (storage resource, key) -> object
Items = Callable[[str, str], Iterable[dict[str, Any]]]  # (storage resource, namespace) -> objects


def node_name(user: str, groups: tuple[str, ...]) -> str:
    """The node an identity stands for, or '' when it is not a node's."""
    if NODES_GROUP in groups and user.startswith(NODE_PREFIX):
        return user[len(NODE_PREFIX):]
    return ""


def _selector_is(selector: str, node: str) -> bool:
    return selector.replace(" ", "") in (f"{NODE_LABEL}={node}", f"{NODE_LABEL}=={node}")


class NodeAuthorizer:
    def __init__(self, get: Get, items: Items) -> None:
        self._get = get
        self._items = items

    def authorize(self, attrs: Attributes) -> Decision:
        node = node_name(attrs.user, attrs.groups)
        if not node or not attrs.resource_request:
            return Decision(False)
        no = Decision(False, f"no relationship found between node '{node}' and this object")
        group, resource, verb = attrs.group, attrs.resource, attrs.verb
        if group == "" and resource == "nodes":
            if verb in _READ and attrs.subresource in ("", "status"):
                return Decision(True, "node authorizer: nodes are readable by every node")
            if verb in _OWN_WRITE and attrs.name == node and attrs.subresource in ("", "status"):
                return Decision(True, "node authorizer: a node's own Node")
            return no
        if group == "coordination.k8s.io" and resource == "leases":
            if attrs.namespace == LEASE_NAMESPACE and attrs.name == node and verb in _OWN_WRITE:
                return Decision(True, "node authorizer: a node's own Lease")
            return no
        if group == INTERNAL_GROUP and resource in _PLACED:
            return self._placed(attrs, node, no)
        if group == NODE_USB_DEVICES.group and resource == NODE_USB_DEVICES.plural:
            return self._usb(attrs, node, no)
        if group == "" and resource == "secrets":
            if verb == "get" and attrs.name and self._references_secret(node, attrs.namespace, attrs.name):
                return Decision(True, "node authorizer: a Secret an instance on this node references")
            return no
        if group == "" and resource == "events" and verb in ("get", "create", "update", "patch"):
            return Decision(True, "node authorizer: nodes record events")
        if group == "authentication.k8s.io" and resource == "tokenreviews" and verb == "create":
            return Decision(True, "node authorizer: nodes check console tokens")
        if group == "authorization.k8s.io" and resource == "subjectaccessreviews" and verb == "create":
            return Decision(True, "node authorizer: nodes ask who may open a console or read their metrics")
        return Decision(False)

    def _placed(self, attrs: Attributes, node: str, no: Decision) -> Decision:
        if attrs.resource == INSTANCES.plural and attrs.verb in _READ and attrs.subresource in ("", "status"):
            # routing needs where every VM runs (vmroutes.py): placement metadata, readable, never writable
            return Decision(True, "node authorizer: instances are readable by every node (VM routes)")
        if attrs.verb in ("list", "watch"):
            if not attrs.name and _selector_is(attrs.label_selector, node):
                return Decision(True, "node authorizer: the objects placed on this node")
            return no
        if attrs.verb in ("get", "update", "patch") and attrs.subresource in ("", "status") and attrs.name:
            # decided on the stored (old) object: a migration's source may move it to the target
            obj = self._get(f"{attrs.group}/{attrs.resource}", f"{attrs.namespace}/{attrs.name}")
            if obj is None or placed_on(obj, node):  # absent: the answer is a 404 either way
                return Decision(True, "node authorizer: an object placed on this node")
        return no

    @staticmethod
    def _usb(attrs: Attributes, node: str, no: Decision) -> Decision:
        if attrs.verb in ("list", "watch"):
            if not attrs.name and _selector_is(attrs.label_selector, node):
                return Decision(True, "node authorizer: the NodeUSBDevices of this node")
            return no
        if attrs.verb in _USB_WRITE and attrs.subresource in ("", "status") and owned_by(attrs.name, node):
            return Decision(True, "node authorizer: a NodeUSBDevice of this node")
        return no

    def _references_secret(self, node: str, namespace: str, name: str) -> bool:
        for obj in self._items(f"{INTERNAL_GROUP}/{INSTANCES.plural}", namespace):
            if not placed_on(obj, node):
                continue
            ref = (((obj.get("spec") or {}).get("cloudInit") or {}).get("userDataSecretRef") or {})
            if ref.get("name") == name:
                return True
        return False
