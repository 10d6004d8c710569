"""Who am I and what may I do: `SelfSubjectReview` (kubectl auth whoami), `SelfSubjectAccessReview`
(kubectl auth can-i), `SelfSubjectRulesReview` (can-i --list), `SubjectAccessReview` and
`LocalSubjectAccessReview`, answered from the server's own authentication.

Bodies come as JSON or, from kubectl 1.33, as protobuf (read through `protobuf.codec` with
the messages of `protobuf/reviews.py`); answers are JSON unless the client accepts only
protobuf.

Every decision goes through the server's authorizer (`authz.authorizer`: system:masters, the
node authorizer, RBAC), the same one that decides requests, so `kubectl auth can-i` answers
what the server would do; `AllowAll` stands in where a server runs without RBAC.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web

from controlplane.apiserver import errors
from controlplane.apiserver.auth import User
from controlplane.apiserver.authz.authorizer import with_authenticated
from controlplane.apiserver.authz.node import node_name
from controlplane.apiserver.authz.rbac import Decision
from controlplane.apiserver.authz.rules import Attributes, Rule
from controlplane.apiserver.handlers import json_response
from controlplane.apiserver.protobuf import codec, negotiation
from controlplane.apiserver.routing import Target

AUTHN_GROUP, AUTHZ_GROUP, VERSION = "authentication.k8s.io", "authorization.k8s.io", "v1"
ALLOW_ALL_REASON = "dvp server authorizes every authenticated user (no RBAC yet)"

AUTHN_RESOURCES: list[dict[str, Any]] = [
    {"name": "selfsubjectreviews", "singularName": "selfsubjectreview", "namespaced": False,
     "kind": "SelfSubjectReview", "verbs": ["create"]},
]
AUTHZ_RESOURCES: list[dict[str, Any]] = [
    {"name": "localsubjectaccessreviews", "singularName": "localsubjectaccessreview", "namespaced": True,
     "kind": "LocalSubjectAccessReview", "verbs": ["create"]},
    {"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": False,
     "kind": "SelfSubjectAccessReview", "verbs": ["create"]},
    {"name": "selfsubjectrulesreviews", "singularName": "selfsubjectrulesreview", "namespaced": False,
     "kind": "SelfSubjectRulesReview", "verbs": ["create"]},
    {"name": "subjectaccessreviews", "singularName": "subjectaccessreview", "namespaced": False,
     "kind": "SubjectAccessReview", "verbs": ["create"]},
]
_KINDS = {r["name"]: r["kind"] for r in AUTHN_RESOURCES + AUTHZ_RESOURCES}

GroupHandler = Callable[[web.Request, Target, User], Awaitable[web.StreamResponse]]


class AllowAll:
    """The authorizer of a server without RBAC (tests, the authorization benchmark's peer)."""

    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(True, ALLOW_ALL_REASON)

    def rules_for(self, user: str, groups: tuple[str, ...], namespace: str) -> list[Rule]:
        del user, groups, namespace
        return [Rule(verbs=frozenset({"*"}), api_groups=frozenset({"*"}), resources=frozenset({"*"})),
                Rule(verbs=frozenset({"*"}), non_resource_urls=frozenset({"*"}))]


class Reviewer(Protocol):
    def authorize(self, attrs: Attributes) -> Decision: ...

    def rules_for(self, user: str, groups: tuple[str, ...], namespace: str) -> list[Rule]: ...


def _text(attrs: dict[str, Any], key: str) -> str:
    value = attrs.get(key)
    return value if isinstance(value, str) else ""


def authorize(authorizer: Reviewer, user: User, attributes: dict[str, Any], *, resource: bool) -> Decision:
    """May `user` do what `attributes` (resourceAttributes or nonResourceAttributes) describe?"""
    verb = _text(attributes, "verb")
    if not resource:
        return authorizer.authorize(Attributes(user.name, user.groups, verb, resource_request=False,
                                               path=_text(attributes, "path")))
    return authorizer.authorize(Attributes(
        user.name, user.groups, verb, group=_text(attributes, "group"), version=_text(attributes, "version"),
        resource=_text(attributes, "resource"), subresource=_text(attributes, "subresource"),
        namespace=_text(attributes, "namespace"), name=_text(attributes, "name")))


def rules_for(authorizer: Reviewer, user: User, namespace: str) -> dict[str, Any]:
    """What `user` may do in `namespace`, as a SelfSubjectRulesReview status."""
    resource_rules: list[dict[str, Any]] = []
    non_resource_rules: list[dict[str, Any]] = []
    for rule in authorizer.rules_for(user.name, user.groups, namespace):
        shown = rule.to_dict()
        if rule.non_resource_urls:
            non_resource_rules.append({"verbs": shown["verbs"], "nonResourceURLs": shown["nonResourceURLs"]})
        if rule.api_groups or rule.resources:
            shown.pop("nonResourceURLs", None)
            resource_rules.append(shown)
    return {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
            "incomplete": bool(node_name(user.name, user.groups))}


def user_info(user: User) -> dict[str, Any]:
    return {"username": user.name, "groups": list(user.groups)}


def decode_protobuf(raw: bytes, kind: str) -> dict[str, Any]:
    """A protobuf review body (envelope included) as the dict its JSON form would be."""
    try:
        api_version, got_kind, body = codec.open_envelope(raw)
        obj = codec.decode_object(codec.review_message(kind), body)
    except codec.DecodeError as exc:
        raise errors.bad_request(f"the body of the request could not be decoded as {negotiation.PROTOBUF}: "
                                 f"{exc}") from None
    return {**({"apiVersion": api_version} if api_version else {}), "kind": got_kind or kind, **obj}


async def read_review(request: web.Request, kind: str, group: str) -> dict[str, Any]:
    # no Content-Type means JSON, as kube-apiserver reads it (aiohttp reports octet-stream then)
    ctype = request.content_type if "Content-Type" in request.headers else negotiation.JSON
    raw = await request.read()
    if ctype == negotiation.PROTOBUF:
        body = decode_protobuf(raw, kind)
    elif ctype != negotiation.JSON:
        raise errors.unsupported_media_type(request.content_type, [negotiation.JSON, negotiation.PROTOBUF])
    elif not raw:
        return {}
    else:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"the body of the request could not be decoded as JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise errors.bad_request(f"a {kind} must be a JSON object")
    if body.get("kind") not in (None, kind):
        raise errors.bad_request(f"the kind in the data ({body.get('kind')}) does not match the expected kind ({kind})")
    if body.get("apiVersion") not in (None, f"{group}/{VERSION}"):
        raise errors.bad_request(f"the API version in the data ({body.get('apiVersion')}) does not match the "
                                 f"expected API version ({group}/{VERSION})")
    spec = body.get("spec")
    if spec is not None and not isinstance(spec, dict):
        raise errors.invalid(kind, group, "", [errors.Cause("spec", "Invalid value: must be an object")])
    return body


def _access(authorizer: Reviewer, kind: str, spec: dict[str, Any], subject: User,
            namespace: str = "") -> dict[str, Any]:
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (res is None) == (non is None):
        raise errors.invalid(kind, AUTHZ_GROUP, "", [errors.Cause(
            "spec.resourceAttributes", "Invalid value: exactly one of nonResourceAttributes or resourceAttributes "
            "must be specified")])
    attrs = res if res is not None else non
    if not isinstance(attrs, dict):
        raise errors.invalid(kind, AUTHZ_GROUP, "", [errors.Cause(
            "spec.resourceAttributes" if res is not None else "spec.nonResourceAttributes",
            "Invalid value: must be an object")])
    if namespace and res is not None and res.get("namespace") not in (None, "", namespace):
        raise errors.invalid(kind, AUTHZ_GROUP, "", [errors.Cause(
            "spec.resourceAttributes.namespace", "Invalid value: must match metadata.namespace")])
    if namespace and res is not None:
        attrs = {**attrs, "namespace": namespace}
    decision = authorize(authorizer, subject, attrs, resource=res is not None)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _subject(kind: str, spec: dict[str, Any]) -> User:
    name, groups = spec.get("user") or "", spec.get("groups") or []
    if not name and not groups:
        raise errors.invalid(kind, AUTHZ_GROUP, "", [errors.Cause(
            "spec.user", "Invalid value: at least one of user or group must be specified")])
    if not isinstance(name, str) or not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise errors.invalid(kind, AUTHZ_GROUP, "", [errors.Cause(
            "spec.groups", "Invalid value: user must be a string and groups a list of strings")])
    return User(name, tuple(groups))


def _protobuf_only(accept: str) -> bool:
    """Does the client accept protobuf and neither JSON nor YAML? (Anything else gets JSON.)"""
    try:
        negotiation.negotiate(accept, protobuf=False)
        return False
    except errors.ApiError:
        pass
    try:
        return negotiation.negotiate(accept, protobuf=True) == negotiation.PROTOBUF
    except errors.ApiError:
        return False


def answer(request: web.Request, group: str, kind: str, body: dict[str, Any], status: dict[str, Any],
            namespace: str = "") -> web.Response:
    meta = dict(body.get("metadata") or {}) if isinstance(body.get("metadata"), dict) else {}
    meta.setdefault("creationTimestamp", None)
    if namespace:
        meta["namespace"] = namespace
    out: dict[str, Any] = {"kind": kind, "apiVersion": f"{group}/{VERSION}", "metadata": meta}
    if kind != "SelfSubjectReview":
        out["spec"] = body.get("spec") or {}
    out["status"] = status
    if _protobuf_only(request.headers.get("Accept", "")):
        raw = codec.encode_object(codec.review_message(kind), out)
        return web.Response(body=codec.envelope(out["apiVersion"], kind, raw), status=201,
                            content_type=negotiation.PROTOBUF)
    return json_response(out, 201)


def authorization_handler(authorizer: Reviewer | None = None) -> GroupHandler:
    reviewer: Reviewer = authorizer if authorizer is not None else AllowAll()

    async def handle(request: web.Request, target: Target, user: User) -> web.StreamResponse:
        kind = _KINDS.get(target.plural)
        if kind is None or kind == "SelfSubjectReview":
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if target.name or target.subresource or request.method != "POST":
            raise errors.method_not_allowed(request.method, f"{target.plural}.{AUTHZ_GROUP}")
        if bool(target.namespace) != (kind == "LocalSubjectAccessReview"):
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        body = await read_review(request, kind, AUTHZ_GROUP)
        spec = body.get("spec") or {}
        if kind == "SelfSubjectRulesReview":
            namespace = spec.get("namespace") or ""
            if not isinstance(namespace, str):
                raise errors.invalid(kind, AUTHZ_GROUP, "", [errors.Cause("spec.namespace", "Invalid value: "
                                                                          "must be a string")])
            self_user = User(user.name, with_authenticated(user.groups))
            return answer(request, AUTHZ_GROUP, kind, body, rules_for(reviewer, self_user, namespace))
        subject = User(user.name, with_authenticated(user.groups)) if kind == "SelfSubjectAccessReview" \
            else _subject(kind, spec)
        return answer(request, AUTHZ_GROUP, kind, body, _access(reviewer, kind, spec, subject, target.namespace),
                       target.namespace)

    return handle


def authentication_handler(token_reviews: GroupHandler) -> GroupHandler:
    """SelfSubjectReview here; TokenReview is passed on to its own handler."""
    async def handle(request: web.Request, target: Target, user: User) -> web.StreamResponse:
        if target.plural != "selfsubjectreviews":
            return await token_reviews(request, target, user)
        if target.name or target.namespace or target.subresource or request.method != "POST":
            raise errors.method_not_allowed(request.method, f"{target.plural}.{AUTHN_GROUP}")
        body = await read_review(request, "SelfSubjectReview", AUTHN_GROUP)
        # kube-apiserver's answer names system:authenticated too (every authenticated user is in it)
        self_user = User(user.name, with_authenticated(user.groups))
        return answer(request, AUTHN_GROUP, "SelfSubjectReview", body, {"userInfo": user_info(self_user)})

    return handle
