"""Core `ServiceAccount`: the stored kind, the `default` account every namespace gets (kube's
ServiceAccount controller), and `POST .../serviceaccounts/NAME/token` (TokenRequest,
`authentication.k8s.io/v1`) answering a signed token from `satokens.py` — what
`kubectl create token SA -n NS` asks for. The body comes as JSON or protobuf (kubectl 1.33).

RBAC decides the request as kube-apiserver does: verb `create` on `serviceaccounts/token`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Hashable
from typing import Any

from aiohttp import web

from controlplane.apiserver import errors, reviews
from controlplane.apiserver.auth import User
from controlplane.apiserver.builtins import AGE_COLUMN, builtin_info, obj_schema, root_schema
from controlplane.apiserver.datastore import Event
from controlplane.apiserver.resources import Column, ResourceInfo
from controlplane.apiserver.routing import Target
from controlplane.apiserver.satokens import API_AUDIENCE, ServiceAccountTokens
from controlplane.apiserver.service import ApiService
from controlplane.apiserver.workqueue import AsyncWorker

log = logging.getLogger(__name__)

DEFAULT = "default"
DEFAULT_SECONDS = 3600  # kube-apiserver's when spec.expirationSeconds is not given
MIN_SECONDS, MAX_SECONDS = 600, 2**32  # kube-apiserver's bounds
_S: dict[str, Any] = {"type": "string"}
_REF = obj_schema({k: _S for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                                   "fieldPath")})
SERVICE_ACCOUNT_SCHEMA = root_schema({
    "secrets": {"type": "array", "items": _REF},
    "imagePullSecrets": {"type": "array", "items": obj_schema({"name": _S})},
    "automountServiceAccountToken": {"type": "boolean"},
})


def service_account_resources() -> list[ResourceInfo]:
    return [builtin_info("", "v1", "ServiceAccount", "serviceaccounts", True, SERVICE_ACCOUNT_SCHEMA,
                         short_names=["sa"], merge_keys={"metadata.ownerReferences": "uid", "metadata.finalizers": ""},
                         columns=[Column("Secrets", "integer", compute=lambda o: len(o.get("secrets") or [])),
                                  AGE_COLUMN])]


def _info(service: ApiService, plural: str) -> ResourceInfo:
    info = service.registry.get("", "v1", plural)
    assert info is not None
    return info


def uid_lookup(service: ApiService) -> Any:
    """(namespace, name) -> the ServiceAccount's uid, or None once it is gone."""
    def lookup(namespace: str, name: str) -> str | None:
        try:
            stored = service.get(_info(service, "serviceaccounts"), namespace, name)
        except errors.ApiError:
            return None
        meta = stored.obj.get("metadata") or {}
        return None if meta.get("deletionTimestamp") else str(meta.get("uid") or "") or None

    return lookup


class DefaultServiceAccounts:
    """Every namespace that is not terminating has a `default` ServiceAccount, made again if deleted."""

    def __init__(self, service: ApiService) -> None:
        self.service = service
        self.queue = AsyncWorker("serviceaccounts", self._ensure)

    def start(self) -> None:
        for key, _stored in self.service.store.items("/namespaces"):
            self.queue.add(key.rsplit("/", 1)[-1])
        self.service.store.subscribe(self._on_events)
        self.queue.start()

    def _on_events(self, events: list[Event]) -> None:
        for e in events:
            if e.resource == "/namespaces" and e.type != "DELETED":
                self.queue.add(e.key.rsplit("/", 1)[-1])
            elif e.resource == "/serviceaccounts" and e.type == "DELETED" and e.key.endswith(f"/{DEFAULT}"):
                self.queue.add(e.key.split("/", 1)[0])

    async def _ensure(self, item: Hashable) -> None:
        namespace = str(item)
        try:
            ns = self.service.get(_info(self.service, "namespaces"), "", namespace)
        except errors.ApiError:
            return
        if (ns.obj.get("metadata") or {}).get("deletionTimestamp"):
            return
        accounts = _info(self.service, "serviceaccounts")
        try:
            self.service.get(accounts, namespace, DEFAULT)
        except errors.ApiError:
            try:
                await self.service.create(accounts, namespace, {"metadata": {"name": DEFAULT}})
            except errors.ApiError as exc:
                if exc.code != 409:  # another writer was first: fine
                    raise


def _spec(body: dict[str, Any]) -> tuple[int, list[str]]:
    spec = body.get("spec") or {}
    causes: list[errors.Cause] = []
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_SECONDS
    elif not isinstance(seconds, int) or isinstance(seconds, bool):
        causes.append(errors.Cause("spec.expirationSeconds", "Invalid value: must be an integer"))
    elif seconds < MIN_SECONDS:
        causes.append(errors.Cause("spec.expirationSeconds",
                                   f"Invalid value: {seconds}: may not specify a duration less than 10 minutes"))
    elif seconds > MAX_SECONDS:
        causes.append(errors.Cause("spec.expirationSeconds",
                                   f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"))
    audiences = spec.get("audiences") or [API_AUDIENCE]
    if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
        causes.append(errors.Cause("spec.audiences", "Invalid value: must be a list of non-empty strings"))
    if spec.get("boundObjectRef"):
        causes.append(errors.Cause("spec.boundObjectRef", "Unsupported value: tokens bound to an object are not "
                                                          "served here; leave it out"))
    if causes:
        raise errors.invalid("TokenRequest", reviews.AUTHN_GROUP, "", causes)
    return int(seconds), list(audiences)


def token_handler(service: ApiService, tokens: ServiceAccountTokens) -> Any:
    async def handle(request: web.Request, target: Target, user: User) -> web.StreamResponse:
        del user
        if request.method != "POST":
            raise errors.method_not_allowed(request.method, "serviceaccounts/token")
        try:
            account = service.get(_info(service, "serviceaccounts"), target.namespace, target.name)
        except errors.ApiError:
            raise errors.not_found("serviceaccounts", "", target.name) from None
        body = await reviews.read_review(request, "TokenRequest", reviews.AUTHN_GROUP)
        seconds, audiences = _spec(body)
        uid = str((account.obj.get("metadata") or {}).get("uid") or "")
        token, expires = tokens.issue(target.namespace, target.name, uid, audiences=audiences, seconds=seconds)
        log.info("token issued for serviceaccount %s/%s (%ds)", target.namespace, target.name, seconds)
        body["metadata"] = {**(body.get("metadata") or {}), "name": target.name, "namespace": target.namespace}
        body["spec"] = {**(body.get("spec") or {}), "audiences": audiences, "expirationSeconds": seconds}
        stamp = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return reviews.answer(request, reviews.AUTHN_GROUP, "TokenRequest", body,
                              {"token": token, "expirationTimestamp": stamp}, target.namespace)

    return handle
