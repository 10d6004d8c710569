"""meta/v1 and runtime messages (k8s.io/apimachinery `generated.proto`): object and list
metadata, Status, DeleteOptions, WatchEvent, and the `runtime.Unknown` envelope.

Field numbers are those of the published definitions; `keep=True` marks Go pointers and
fields serialized without `omitempty`, whose zero values are meaningful."""

from __future__ import annotations

from controlplane.apiserver.protobuf.schema import b, i32, i64, m, mapof, message, rep, s, t

OBJECT_META = message(
    "ObjectMeta",
    s(1, "name"), s(2, "generateName"), s(3, "namespace"), s(4, "selfLink"), s(5, "uid"), s(6, "resourceVersion"),
    i64(7, "generation"), t(8, "creationTimestamp"), t(9, "deletionTimestamp"),
    i64(10, "deletionGracePeriodSeconds", keep=True), mapof(11, "labels", "string"),
    mapof(12, "annotations", "string"), rep(13, "ownerReferences", "OwnerReference"), rep(14, "finalizers", "string"),
    rep(17, "managedFields", "ManagedFieldsEntry"),
)
message("OwnerReference",
        s(5, "apiVersion", keep=True), s(1, "kind", keep=True), s(3, "name", keep=True), s(4, "uid", keep=True),
        b(6, "controller", keep=True), b(7, "blockOwnerDeletion", keep=True))
message("ManagedFieldsEntry",
        s(1, "manager"), s(2, "operation"), s(3, "apiVersion"), t(4, "time"), s(6, "fieldsType"),
        t(7, "fieldsV1", "fieldsv1"), s(8, "subresource"))
LIST_META = message("ListMeta", s(1, "selfLink"), s(2, "resourceVersion"), s(3, "continue"),
                    i64(4, "remainingItemCount", keep=True))
message("Condition",
        s(1, "type", keep=True), s(2, "status", keep=True), i64(3, "observedGeneration"),
        t(4, "lastTransitionTime"), s(5, "reason", keep=True), s(6, "message", keep=True))
STATUS = message("Status", m(1, "metadata", "ListMeta"), s(2, "status"), s(3, "message"), s(4, "reason"),
                 m(5, "details", "StatusDetails"), i32(6, "code"))
message("StatusDetails", s(1, "name"), s(2, "group"), s(3, "kind"), s(6, "uid"), rep(4, "causes", "StatusCause"),
        i32(5, "retryAfterSeconds"))
message("StatusCause", s(1, "reason"), s(2, "message"), s(3, "field"))
DELETE_OPTIONS = message(
    "DeleteOptions",
    i64(1, "gracePeriodSeconds", keep=True), m(2, "preconditions", "Preconditions"),
    b(3, "orphanDependents", keep=True), s(4, "propagationPolicy", keep=True), rep(5, "dryRun", "string"),
    b(6, "ignoreStoreReadErrorWithClusterBreakingPotential", keep=True),
)
message("Preconditions", s(1, "uid", keep=True), s(2, "resourceVersion", keep=True))
WATCH_EVENT = message("WatchEvent", s(1, "type"), m(2, "object", "RawExtension"))
message("RawExtension", t(1, "raw", "rawbytes"))
TYPE_META = message("TypeMeta", s(1, "apiVersion"), s(2, "kind"))
UNKNOWN = message("Unknown", m(1, "typeMeta", "TypeMeta"), t(2, "raw", "rawbytes"), s(3, "contentEncoding"),
                  s(4, "contentType"))
