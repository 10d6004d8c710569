"""The built-in kinds the platform needs: Namespace, Secret, ConfigMap, Event, Node, Lease,
and CustomResourceDefinition — with structural schemas (so they are pruned, validated and
published in OpenAPI like custom resources), kubectl's default columns, the field labels
kube-apiserver supports for them, and their strategic-merge-patch keys."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.resources import Column, ResourceInfo
from controlplane.apiserver.schema import StructuralSchema

_S: dict[str, Any] = {"type": "string"}
_I: dict[str, Any] = {"type": "integer", "format": "int32"}
_B: dict[str, Any] = {"type": "boolean"}
_STR_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _S}
_ANY_OBJ: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_AGE = Column("Age", "date", ".metadata.creationTimestamp")


def _obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, **extra}


def _root(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return _obj({"apiVersion": _S, "kind": _S, "metadata": {"type": "object"}, **props}, **extra)


_CONDITION = _obj({
    "type": _S, "status": _S, "reason": _S, "message": _S, "lastTransitionTime": _S,
    "lastHeartbeatTime": _S, "lastProbeTime": _S, "observedGeneration": {"type": "integer"},
})
_OBJECT_REF = _obj({k: _S for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")})


def _info(group: str, version: str, kind: str, plural: str, namespaced: bool, schema: dict[str, Any],
          **kw: Any) -> ResourceInfo:
    return ResourceInfo(group=group, version=version, kind=kind, plural=plural, singular=kind.lower(),
                        namespaced=namespaced, schema=StructuralSchema(schema, kind=kind), raw_schema=schema,
                        builtin=True, **kw)


def _data_count(obj: dict[str, Any]) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


def _node_status(obj: dict[str, Any]) -> str:
    ready = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    status = "Ready" if ready and ready.get("status") == "True" else "NotReady" if ready else "Unknown"
    if (obj.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(obj: dict[str, Any]) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    return ",".join(roles) or "<none>"


def _node_address(kind: str) -> Any:
    def get(obj: dict[str, Any]) -> str:
        addrs = (obj.get("status") or {}).get("addresses") or []
        return next((a.get("address", "") for a in addrs if a.get("type") == kind), "<none>")
    return get


def _event_object(obj: dict[str, Any]) -> str:
    ref = obj.get("involvedObject") or {}
    return f"{(ref.get('kind') or '').lower()}/{ref.get('name', '')}"


def _event_last_seen(obj: dict[str, Any]) -> Any:
    return obj.get("lastTimestamp") or obj.get("eventTime") or (obj.get("metadata") or {}).get("creationTimestamp")


NAMESPACE_SCHEMA = _root({
    "spec": _obj({"finalizers": {"type": "array", "items": _S}}),
    "status": _obj({"phase": _S, "conditions": {"type": "array", "items": _CONDITION}}),
})
SECRET_SCHEMA = _root({
    "data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
    "stringData": _STR_MAP, "type": _S, "immutable": _B,
})
CONFIGMAP_SCHEMA = _root({
    "data": _STR_MAP, "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
    "immutable": _B,
})
EVENT_SCHEMA = _root({
    "involvedObject": _OBJECT_REF, "related": _OBJECT_REF, "reason": _S, "message": _S,
    "source": _obj({"component": _S, "host": _S}), "firstTimestamp": _S, "lastTimestamp": _S,
    "eventTime": _S, "count": _I, "type": _S, "action": _S, "reportingComponent": _S,
    "reportingInstance": _S, "series": _obj({"count": _I, "lastObservedTime": _S}),
}, required=["involvedObject"])
NODE_SCHEMA = _root({
    "spec": _obj({
        "podCIDR": _S, "podCIDRs": {"type": "array", "items": _S}, "providerID": _S, "unschedulable": _B,
        "taints": {"type": "array", "items": _obj({"key": _S, "value": _S, "effect": _S, "timeAdded": _S},
                                                  required=["key", "effect"])},
    }),
    "status": _ANY_OBJ,
})
LEASE_SCHEMA = _root({
    "spec": _obj({
        "holderIdentity": _S, "leaseDurationSeconds": _I, "acquireTime": _S, "renewTime": _S,
        "leaseTransitions": _I,
    }),
})
CRD_SCHEMA = _root({
    "spec": _obj({
        "group": _S,
        "names": _obj({"plural": _S, "singular": _S, "kind": _S, "listKind": _S,
                       "shortNames": {"type": "array", "items": _S}, "categories": {"type": "array", "items": _S}},
                      required=["plural", "kind"]),
        "scope": {"type": "string", "enum": ["Namespaced", "Cluster"]},
        "versions": {"type": "array", "minItems": 1, "items": _obj({
            "name": _S, "served": _B, "storage": _B, "deprecated": _B, "deprecationWarning": _S,
            "schema": _obj({"openAPIV3Schema": _ANY_OBJ}),
            "subresources": _ANY_OBJ,
            "additionalPrinterColumns": {"type": "array", "items": _obj({
                "name": _S, "type": _S, "format": _S, "description": _S, "priority": _I, "jsonPath": _S,
            }, required=["name", "type", "jsonPath"])},
            "selectableFields": {"type": "array", "items": _obj({"jsonPath": _S})},
        }, required=["name", "served", "storage"])},
        "conversion": _ANY_OBJ,
        "preserveUnknownFields": _B,
    }, required=["group", "names", "scope", "versions"]),
    "status": _ANY_OBJ,
}, required=["spec"])

_EVENT_FIELDS = frozenset({
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
    "reason", "reportingComponent", "source", "type",
})


def builtin_resources() -> list[ResourceInfo]:
    owner_keys = {"metadata.ownerReferences": "uid", "metadata.finalizers": ""}
    return [
        _info("", "v1", "Namespace", "namespaces", False, NAMESPACE_SCHEMA, short_names=["ns"], has_status=True,
              columns=[Column("Status", json_path=".status.phase"), _AGE], field_labels=frozenset({"status.phase"}),
              merge_keys={**owner_keys, "status.conditions": "type", "spec.finalizers": ""}),
        _info("", "v1", "Secret", "secrets", True, SECRET_SCHEMA, field_labels=frozenset({"type"}),
              columns=[Column("Type", json_path=".type"), Column("Data", "integer", compute=_data_count), _AGE],
              merge_keys=owner_keys),
        _info("", "v1", "ConfigMap", "configmaps", True, CONFIGMAP_SCHEMA, short_names=["cm"],
              columns=[Column("Data", "integer", compute=_data_count), _AGE], merge_keys=owner_keys),
        _info("", "v1", "Event", "events", True, EVENT_SCHEMA, short_names=["ev"], field_labels=_EVENT_FIELDS,
              columns=[Column("Last Seen", "date", compute=_event_last_seen), Column("Type", json_path=".type"),
                       Column("Reason", json_path=".reason"), Column("Object", compute=_event_object),
                       Column("Message", json_path=".message")], merge_keys=owner_keys),
        _info("", "v1", "Node", "nodes", False, NODE_SCHEMA, short_names=["no"], has_status=True,
              field_labels=frozenset({"spec.unschedulable"}),
              columns=[Column("Status", compute=_node_status), Column("Roles", compute=_node_roles), _AGE,
                       Column("Version", json_path=".status.nodeInfo.kubeletVersion"),
                       Column("Internal-IP", compute=_node_address("InternalIP"), priority=1),
                       Column("OS-Image", json_path=".status.nodeInfo.osImage", priority=1),
                       Column("Kernel-Version", json_path=".status.nodeInfo.kernelVersion", priority=1)],
              merge_keys={**owner_keys, "status.conditions": "type", "status.addresses": "type", "spec.taints": "key"}),
        _info("coordination.k8s.io", "v1", "Lease", "leases", True, LEASE_SCHEMA,
              columns=[Column("Holder", json_path=".spec.holderIdentity"), _AGE], merge_keys=owner_keys),
        _info("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
              CRD_SCHEMA, short_names=["crd", "crds"], has_status=True, tracks_generation=True,
              categories=["api-extensions"], columns=[Column("Created At", compute=lambda o: (o.get("metadata") or {}).get("creationTimestamp"))],
              merge_keys={**owner_keys, "status.conditions": "type"}),
    ]


# shared with built-in kinds defined in modules of their own (services.py)
builtin_info = _info
obj_schema = _obj
root_schema = _root
AGE_COLUMN = _AGE
