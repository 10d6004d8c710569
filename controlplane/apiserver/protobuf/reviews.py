"""authentication.k8s.io/v1 and authorization.k8s.io/v1 review messages (k8s.io/api
`generated.proto`): SelfSubjectReview, TokenReview, TokenRequest (`kubectl create token`),
SelfSubjectAccessReview,
SelfSubjectRulesReview, SubjectAccessReview and LocalSubjectAccessReview, with their specs
and statuses. kubectl 1.33 sends `auth whoami` and `auth can-i` as protobuf.

`ExtraValue` is a `[]string` in Go, so its JSON form is a plain list of strings; it is a
field type of its own (`extravalue`) rather than a message. `keep=True` marks fields
serialized without `omitempty`."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.protobuf import wire
from controlplane.apiserver.protobuf.scalars import register_type, str_bytes
from controlplane.apiserver.protobuf.schema import PathError, b, i64, m, mapof, message, rep, s, t

OBJECT = "ObjectMeta"
_T1 = wire.key(1, wire.LENGTH)


def _enc_extra(tag: bytes, v: Any) -> bytes:
    if not isinstance(v, list):
        raise TypeError("extra values must be a list of strings")
    return wire.length_delimited(tag, b"".join(wire.length_delimited(_T1, str_bytes(x)) for x in v))


def _dec_extra(value: bytes, where: str) -> list[str]:
    try:
        return [v.decode() for number, _wt, v in wire.fields(value) if number == 1 and isinstance(v, bytes)]
    except wire.WireError as exc:
        raise PathError(f"{where}: {exc}") from None
    except UnicodeDecodeError:
        raise PathError(f"{where}: not valid UTF-8") from None


register_type("extravalue", _enc_extra, _dec_extra)

# -- authentication.k8s.io/v1 -------------------------------------------------------------------
message("UserInfo", s(1, "username"), s(2, "uid"), rep(3, "groups", "string"), mapof(4, "extra", "extravalue"))
message("SelfSubjectReview", m(1, "metadata", OBJECT), m(2, "status", "SelfSubjectReviewStatus"))
message("SelfSubjectReviewStatus", m(1, "userInfo", "UserInfo"))
message("TokenReview", m(1, "metadata", OBJECT), m(2, "spec", "TokenReviewSpec"), m(3, "status", "TokenReviewStatus"))
message("TokenReviewSpec", s(1, "token"), rep(2, "audiences", "string"))
message("TokenRequest", m(1, "metadata", OBJECT), m(2, "spec", "TokenRequestSpec"),
        m(3, "status", "TokenRequestStatus"))
message("TokenRequestSpec", rep(1, "audiences", "string"), i64(4, "expirationSeconds", keep=True),
        m(3, "boundObjectRef", "BoundObjectReference"))
message("BoundObjectReference", s(1, "kind"), s(2, "apiVersion"), s(3, "name"), s(4, "uid"))
message("TokenRequestStatus", s(1, "token", keep=True), t(2, "expirationTimestamp"))
message("TokenReviewStatus", b(1, "authenticated"), m(2, "user", "UserInfo"), rep(4, "audiences", "string"),
        s(3, "error"))

# -- authorization.k8s.io/v1 --------------------------------------------------------------------
for _kind, _spec in (("SelfSubjectAccessReview", "SelfSubjectAccessReviewSpec"),
                     ("SubjectAccessReview", "SubjectAccessReviewSpec"),
                     ("LocalSubjectAccessReview", "SubjectAccessReviewSpec")):
    message(_kind, m(1, "metadata", OBJECT), m(2, "spec", _spec), m(3, "status", "SubjectAccessReviewStatus"))
message("SelfSubjectRulesReview", m(1, "metadata", OBJECT), m(2, "spec", "SelfSubjectRulesReviewSpec"),
        m(3, "status", "SubjectRulesReviewStatus"))
message("SelfSubjectAccessReviewSpec", m(1, "resourceAttributes", "ResourceAttributes"),
        m(2, "nonResourceAttributes", "NonResourceAttributes"))
message("SubjectAccessReviewSpec", m(1, "resourceAttributes", "ResourceAttributes"),
        m(2, "nonResourceAttributes", "NonResourceAttributes"), s(3, "user"), rep(4, "groups", "string"),
        mapof(5, "extra", "extravalue"), s(6, "uid"))
message("SelfSubjectRulesReviewSpec", s(1, "namespace"))
message("ResourceAttributes", s(1, "namespace"), s(2, "verb"), s(3, "group"), s(4, "version"), s(5, "resource"),
        s(6, "subresource"), s(7, "name"), m(8, "fieldSelector", "FieldSelectorAttributes"),
        m(9, "labelSelector", "LabelSelectorAttributes"))
message("NonResourceAttributes", s(1, "path"), s(2, "verb"))
message("FieldSelectorAttributes", s(1, "rawSelector"), rep(2, "requirements", "FieldSelectorRequirement"))
message("LabelSelectorAttributes", s(1, "rawSelector"), rep(2, "requirements", "LabelSelectorRequirement"))
message("FieldSelectorRequirement", s(1, "key", keep=True), s(2, "operator", keep=True), rep(3, "values", "string"))
message("LabelSelectorRequirement", s(1, "key", keep=True), s(2, "operator", keep=True), rep(3, "values", "string"))
message("SubjectAccessReviewStatus", b(1, "allowed", keep=True), b(4, "denied"), s(2, "reason"),
        s(3, "evaluationError"))
message("SubjectRulesReviewStatus", rep(1, "resourceRules", "ResourceRule"),
        rep(2, "nonResourceRules", "NonResourceRule"), b(3, "incomplete", keep=True), s(4, "evaluationError"))
message("ResourceRule", rep(1, "verbs", "string"), rep(2, "apiGroups", "string"), rep(3, "resources", "string"),
        rep(4, "resourceNames", "string"))
message("NonResourceRule", rep(1, "verbs", "string"), rep(2, "nonResourceURLs", "string"))
