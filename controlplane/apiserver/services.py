"""Core `Service` and `Endpoints` and `discovery.k8s.io/v1 EndpointSlice` as stored built-in kinds,
and the `kubernetes` Service in `default` that points at the API server itself.

Nothing proxies Service traffic here (there are no pods); the kinds exist so that tools that
look for them (`kubectl cluster-info`, client libraries finding the API server from inside,
charts that ship a Service next to DVP objects) see what a cluster shows them. The
`kubernetes` Service, its Endpoints and EndpointSlice are written at every server start, so
they follow the server's address and port.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from controlplane.apiserver import errors
from controlplane.apiserver.builtins import AGE_COLUMN, builtin_info, obj_schema, root_schema
from controlplane.apiserver.resources import Column, ResourceInfo
from controlplane.apiserver.service import ApiService

_S: dict[str, Any] = {"type": "string"}
_I: dict[str, Any] = {"type": "integer", "format": "int32"}
_B: dict[str, Any] = {"type": "boolean"}
_STRS: dict[str, Any] = {"type": "array", "items": _S}
_INT_OR_STR: dict[str, Any] = {"x-kubernetes-int-or-string": True}
_REF = obj_schema({k: _S for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                                   "fieldPath")})

SERVICE_SCHEMA = root_schema({
    "spec": obj_schema({
        "type": _S, "clusterIP": _S, "clusterIPs": _STRS, "externalIPs": _STRS, "externalName": _S,
        "selector": {"type": "object", "additionalProperties": _S}, "sessionAffinity": _S,
        "sessionAffinityConfig": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "ports": {"type": "array", "items": obj_schema({
            "name": _S, "protocol": _S, "appProtocol": _S, "port": _I, "targetPort": _INT_OR_STR, "nodePort": _I,
        }, required=["port"])},
        "loadBalancerIP": _S, "loadBalancerSourceRanges": _STRS, "loadBalancerClass": _S,
        "externalTrafficPolicy": _S, "internalTrafficPolicy": _S, "healthCheckNodePort": _I,
        "publishNotReadyAddresses": _B, "ipFamilies": _STRS, "ipFamilyPolicy": _S,
        "allocateLoadBalancerNodePorts": _B, "trafficDistribution": _S,
    }),
    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
})
_EP_PORT = obj_schema({"name": _S, "port": _I, "protocol": _S, "appProtocol": _S}, required=["port"])
_EP_ADDRESS = obj_schema({"ip": _S, "hostname": _S, "nodeName": _S, "targetRef": _REF}, required=["ip"])
ENDPOINTS_SCHEMA = root_schema({
    "subsets": {"type": "array", "items": obj_schema({
        "addresses": {"type": "array", "items": _EP_ADDRESS},
        "notReadyAddresses": {"type": "array", "items": _EP_ADDRESS},
        "ports": {"type": "array", "items": _EP_PORT},
    })},
})
ENDPOINT_SLICE_SCHEMA = root_schema({
    "addressType": {"type": "string", "enum": ["IPv4", "IPv6", "FQDN"]},
    "endpoints": {"type": "array", "items": obj_schema({
        "addresses": _STRS, "hostname": _S, "nodeName": _S, "zone": _S, "targetRef": _REF,
        "conditions": obj_schema({"ready": _B, "serving": _B, "terminating": _B}),
        "deprecatedTopology": {"type": "object", "additionalProperties": _S},
        "hints": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }, required=["addresses"])},
    "ports": {"type": "array", "items": _EP_PORT},
}, required=["addressType", "endpoints"])


def _ports(obj: dict[str, Any]) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    out = [f"{p.get('port')}{'/' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol') or 'TCP'}"
           for p in ports if isinstance(p, dict)]
    return ",".join(out) or "<none>"


def _external_ip(obj: dict[str, Any]) -> str:
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName") or "<none>")
    ips = list(spec.get("externalIPs") or [])
    return ",".join(ips) or "<none>"


def _endpoints(obj: dict[str, Any]) -> str:
    found = [f"{a.get('ip')}:{p.get('port')}" for s in obj.get("subsets") or [] for a in s.get("addresses") or []
             for p in s.get("ports") or [{}]]
    return ",".join(found) or "<none>"


def _slice_endpoints(obj: dict[str, Any]) -> str:
    return ",".join(a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []) or "<unset>"


def _slice_ports(obj: dict[str, Any]) -> str:
    return ",".join(str(p.get("port")) for p in obj.get("ports") or []) or "<unset>"


def service_resources() -> list[ResourceInfo]:
    owner_keys = {"metadata.ownerReferences": "uid", "metadata.finalizers": ""}
    return [
        builtin_info("", "v1", "Service", "services", True, SERVICE_SCHEMA, short_names=["svc"], has_status=True,
                     categories=["all"],
                     columns=[Column("Type", json_path=".spec.type"),
                              Column("Cluster-IP", compute=lambda o: (o.get("spec") or {}).get("clusterIP") or "<none>"),
                              Column("External-IP", compute=_external_ip), Column("Port(s)", compute=_ports),
                              AGE_COLUMN,
                              Column("Selector", compute=lambda o: ",".join(
                                  f"{k}={v}" for k, v in ((o.get("spec") or {}).get("selector") or {}).items())
                                  or "<none>", priority=1)],
                     merge_keys={**owner_keys, "spec.ports": "port"}),
        builtin_info("", "v1", "Endpoints", "endpoints", True, ENDPOINTS_SCHEMA, short_names=["ep"],
                     columns=[Column("Endpoints", compute=_endpoints), AGE_COLUMN], merge_keys=owner_keys),
        builtin_info("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, ENDPOINT_SLICE_SCHEMA,
                     columns=[Column("AddressType", json_path=".addressType"), Column("Ports", compute=_slice_ports),
                              Column("Endpoints", compute=_slice_endpoints), AGE_COLUMN],
                     merge_keys=owner_keys),
    ]


def _address_type(ip: str) -> str:
    return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"


def endpoint_ip(host: str) -> str:
    """The address the `kubernetes` Endpoints name: the listen or advertised host as an IP."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        try:
            return socket.gethostbyname(host)
        except OSError:
            return "127.0.0.1"


def kubernetes_objects(ip: str, port: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The `kubernetes` Service, Endpoints and EndpointSlice as (group, plural, object)."""
    labels = {"component": "apiserver", "provider": "kubernetes"}
    meta = {"name": "kubernetes", "namespace": "default", "labels": labels}
    svc = {"metadata": meta, "spec": {
        "type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "sessionAffinity": "None",
        "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": port}],
        "ipFamilies": [_address_type(ip)], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"}}
    ep = {"metadata": {**meta, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}, "subsets": [
        {"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    eps = {"metadata": {**meta, "labels": {"kubernetes.io/service-name": "kubernetes"}},
           "addressType": _address_type(ip),
           "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
           "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    return [("", "services", svc), ("", "endpoints", ep), ("discovery.k8s.io", "endpointslices", eps)]


async def ensure_kubernetes_service(service: ApiService, *, ip: str, port: int) -> None:
    """Create or update the `kubernetes` Service, Endpoints and EndpointSlice in `default`."""
    for group, plural, obj in kubernetes_objects(ip, port):
        info = service.registry.get(group, "v1", plural)
        assert info is not None, plural
        try:
            current = service.get(info, "default", "kubernetes")
        except errors.ApiError as exc:
            if exc.code != 404:
                raise
            await service.create(info, "default", obj)
            continue
        desired = current.copy()
        for k, v in obj.items():
            if k != "metadata":
                desired[k] = v
        desired["metadata"]["labels"] = {**(desired["metadata"].get("labels") or {}), **obj["metadata"]["labels"]}
        await service.update(info, "default", "kubernetes", desired)
