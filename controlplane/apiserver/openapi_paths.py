"""The `paths` of the OpenAPI documents: one operation per verb of every served resource, with the
query parameters the server takes (`dryRun`, `fieldManager`, ...).

Clients read more than schemas from here: kubectl 1.20 decides whether the server supports
`--dry-run=server` (and so whether `kubectl diff` works) by finding a PATCH operation tagged
with the kind's `x-kubernetes-group-version-kind` that takes a `dryRun` parameter; newer
kubectl looks for `fieldValidation` the same way (and then leaves validation to the server).
Shared by `/openapi/v2` (refs into
`#/definitions/`) and `/openapi/v3` (refs into `#/components/schemas/`).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.resources import ResourceInfo

STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
JSON_YAML = ["application/json", "application/yaml"]
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
_ACTION_IDS = {"list": "list", "post": "create", "deletecollection": "deletecollection", "get": "read",
               "put": "replace", "patch": "patch", "delete": "delete"}

# kubectl (1.24+) stops validating unknown fields itself once it finds `fieldValidation` here:
# the server honours it (fieldvalidation.py).
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_LIST = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
         "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_PARAM_TYPES = {"limit": "integer", "timeoutSeconds": "integer", "allowWatchBookmarks": "boolean",
                "watch": "boolean", "sendInitialEvents": "boolean", "force": "boolean",
                "gracePeriodSeconds": "integer"}
_PARAM_TEXT = {
    "dryRun": "When present, modifications are not persisted. Valid value: All.",
    "fieldManager": "A name for the actor making the change.",
    "fieldValidation": "How to treat unknown or duplicate fields: Ignore, Warn or Strict.",
    "force": "Force an apply request to take over conflicting fields.",
    "propagationPolicy": "Whether and how dependents are garbage collected: Orphan, Background or Foreground.",
    "gracePeriodSeconds": "Duration before the object is deleted.",
}


def _op_id(action: str, info: ResourceInfo, *, all_namespaces: bool = False, status: bool = False) -> str:
    group = "".join(p.capitalize() for p in (info.group or "core").split(".")[:2])
    scope = "Namespaced" if info.namespaced and not all_namespaces else ""
    suffix = "ForAllNamespaces" if all_namespaces else ""
    return f"{_ACTION_IDS[action]}{group}{info.version.capitalize()}{scope}{info.kind}{'Status' if status else ''}" \
           f"{suffix}"


def _query(name: str, *, v3: bool) -> dict[str, Any]:
    typ = _PARAM_TYPES.get(name, "string")
    param: dict[str, Any] = {"name": name, "in": "query", "uniqueItems": True}
    if name in _PARAM_TEXT:
        param["description"] = _PARAM_TEXT[name]
    if v3:
        param["schema"] = {"type": typ, "uniqueItems": True}
        param.pop("uniqueItems")
    else:
        param["type"] = typ
    return param


def _path_param(name: str, *, v3: bool) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "path", "required": True, "uniqueItems": True,
                             "description": f"{name} of the object" if name == "name" else "object name and auth "
                                                                                           "scope"}
    if v3:
        param["schema"] = {"type": "string", "uniqueItems": True}
        param.pop("uniqueItems")
    else:
        param["type"] = "string"
    return param


class PathBuilder:
    """Operations for one OpenAPI flavour: `ref(name)` makes a schema reference."""

    def __init__(self, *, v3: bool) -> None:
        self.v3 = v3
        self.prefix = "#/components/schemas/" if v3 else "#/definitions/"

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": self.prefix + name}

    def _operation(self, info: ResourceInfo, action: str, op_id: str, response: str, *,
                   params: tuple[str, ...] = (), body: str = "", consumes: list[str] | None = None) -> dict[str, Any]:
        tag = ("core" if not info.group else info.group.split(".")[0]) + "_" + info.version
        op: dict[str, Any] = {"description": f"{_ACTION_IDS[action]} {info.kind}", "operationId": op_id,
                              "tags": [tag],
                              "parameters": [_query(p, v3=self.v3) for p in params],
                              "x-kubernetes-action": action,
                              "x-kubernetes-group-version-kind": {"group": info.group, "kind": info.kind,
                                                                  "version": info.version}}
        if self.v3:
            op["responses"] = {"200": {"description": "OK", "content": {
                t: {"schema": self.ref(response)} for t in JSON_YAML}}}
            if body:
                op["requestBody"] = {"content": {t: {"schema": self.ref(body)} for t in consumes or ["*/*"]},
                                     "required": True}
        else:
            op["consumes"] = consumes or ["*/*"]
            op["produces"] = JSON_YAML
            op["schemes"] = ["https"]
            op["responses"] = {"200": {"description": "OK", "schema": self.ref(response)},
                               "401": {"description": "Unauthorized"}}
            if body:
                op["parameters"].insert(0, {"name": "body", "in": "body", "required": True, "schema": self.ref(body)})
        return op

    def resource_paths(self, info: ResourceInfo, base: str, kind_ref: str, list_ref: str) -> dict[str, Any]:
        """Paths of one resource under `base` (`/api/v1` or `/apis/<group>/<version>`)."""
        ns = "/namespaces/{namespace}" if info.namespaced else ""
        collection = f"{base}{ns}/{info.plural}"
        item = f"{collection}/{{name}}"
        ns_param = [_path_param("namespace", v3=self.v3)] if info.namespaced else []
        pretty = _query("pretty", v3=self.v3)
        patch_types = PATCH_TYPES + (["application/strategic-merge-patch+json"] if info.builtin else [])
        verbs = set(info.verbs)
        out: dict[str, Any] = {}
        coll: dict[str, Any] = {"parameters": [*ns_param, pretty]}
        if "list" in verbs:
            coll["get"] = self._operation(info, "list", _op_id("list", info), list_ref, params=_LIST)
        if "create" in verbs:
            coll["post"] = self._operation(info, "post", _op_id("post", info), kind_ref, params=_WRITE,
                                           body=kind_ref, consumes=["application/json", "application/yaml"])
        if "deletecollection" in verbs:
            coll["delete"] = self._operation(info, "deletecollection", _op_id("deletecollection", info), STATUS,
                                             params=(*_LIST, "dryRun", "gracePeriodSeconds", "propagationPolicy"))
        out[collection] = coll
        one: dict[str, Any] = {"parameters": [_path_param("name", v3=self.v3), *ns_param, pretty]}
        if "get" in verbs:
            one["get"] = self._operation(info, "get", _op_id("get", info), kind_ref, params=("resourceVersion",))
        if "update" in verbs:
            one["put"] = self._operation(info, "put", _op_id("put", info), kind_ref, params=_WRITE, body=kind_ref,
                                         consumes=["application/json", "application/yaml"])
        if "patch" in verbs:
            one["patch"] = self._operation(info, "patch", _op_id("patch", info), kind_ref, params=(*_WRITE, "force"),
                                           body="io.k8s.apimachinery.pkg.apis.meta.v1.Patch", consumes=patch_types)
        if "delete" in verbs:
            one["delete"] = self._operation(info, "delete", _op_id("delete", info), kind_ref,
                                            params=("dryRun", "gracePeriodSeconds", "propagationPolicy"))
        out[item] = one
        if info.has_status:
            out[f"{item}/status"] = {
                "parameters": one["parameters"],
                "get": self._operation(info, "get", _op_id("get", info, status=True), kind_ref),
                "put": self._operation(info, "put", _op_id("put", info, status=True), kind_ref, params=_WRITE,
                                       body=kind_ref, consumes=["application/json", "application/yaml"]),
                "patch": self._operation(info, "patch", _op_id("patch", info, status=True), kind_ref,
                                         params=(*_WRITE, "force"),
                                         body="io.k8s.apimachinery.pkg.apis.meta.v1.Patch", consumes=patch_types),
            }
        if info.namespaced and "list" in verbs:
            out[f"{base}/{info.plural}"] = {
                "parameters": [pretty],
                "get": self._operation(info, "list", _op_id("list", info, all_namespaces=True), list_ref,
                                       params=_LIST)}
        return out


def base_path(info: ResourceInfo) -> str:
    return f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
