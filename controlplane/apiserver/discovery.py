"""API discovery documents: /version, /api, /api/v1, /apis, /apis/{group}[/{version}].

kubectl and client libraries find every kind, its verbs, short names, categories and scope
from these; they are rebuilt from the `Registry` whenever a CRD changes.
"""

from __future__ import annotations

import platform
from typing import Any

from controlplane.apiserver.migrations import data_version
from controlplane.apiserver.resources import Registry, ResourceInfo
from controlplane.common.version import __version__

KUBE_COMPAT_MINOR = 28


def version_info() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": str(KUBE_COMPAT_MINOR),
        "gitVersion": f"v1.{KUBE_COMPAT_MINOR}.0-dvp.{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{platform.machine()}",
        "dvpVersion": __version__,
        "dvpDataVersion": data_version(),
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _resource_entries(info: ResourceInfo) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": info.plural, "singularName": info.singular, "namespaced": info.namespaced, "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    if info.categories:
        main["categories"] = list(info.categories)
    out = [main]
    if info.has_status:
        out.append({"name": f"{info.plural}/status", "singularName": "", "namespaced": info.namespaced,
                    "kind": info.kind, "verbs": ["get", "patch", "update"]})
    if "scale" in info.subresources:
        out.append({"name": f"{info.plural}/scale", "singularName": "", "namespaced": info.namespaced,
                    "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})
    return out


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    infos = registry.resources(group, version)
    if not infos:
        return None
    resources = [e for info in sorted(infos, key=lambda i: i.plural) for e in _resource_entries(info)]
    if group == "" and any(i.plural == "namespaces" for i in infos):
        resources.append({"name": "namespaces/finalize", "singularName": "", "namespaced": False,
                          "kind": "Namespace", "verbs": ["update"]})
    if group == "" and any(i.plural == "serviceaccounts" for i in infos):  # TokenRequest, as kube lists it
        resources.append({"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
                          "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                          "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.versions(group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    groups = []
    for g in registry.group_order:
        if g == "":
            continue
        doc = api_group(registry, g)
        if doc:
            doc.pop("kind")
            doc.pop("apiVersion")
            groups.append(doc)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
