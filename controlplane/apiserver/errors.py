"""API errors as Kubernetes `Status` objects.

Every failure the API server answers is an `ApiError`; `to_status()` renders it the way
kube-apiserver does (kind Status, reason, code, details.causes with field paths), which is
what kubectl and the `kubernetes` client parse into their error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.apiserver import datastore


@dataclass
class Cause:
    """One field-level problem: `field` is a path like `spec.cpu.cores`."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def render(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class ApiError(Exception):
    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        d["group"] = group
    return d


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    _details(name, group, resource))


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    _details(name, group, resource))


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    _details(name, group, resource))


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    rendered = [c.render() for c in causes]
    body = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    qualified = f"{kind}.{group}" if group else kind
    details = _details(name, group, kind)
    details["causes"] = [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {body}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


CONFLICT_ADVICE = "the object has been modified; please apply your changes to the latest version and try again"


def from_storage(exc: datastore.StorageError, resource: str, group: str, name: str) -> ApiError:
    """The one mapping of the datastore's errors to HTTP (the service calls it on every write)."""
    if isinstance(exc, datastore.NotFound):
        return not_found(resource, group, name)
    if isinstance(exc, datastore.Exists):
        return already_exists(resource, group, name)
    if isinstance(exc, datastore.Conflict):
        return conflict(resource, group, name, CONFLICT_ADVICE)
    if isinstance(exc, datastore.Expired):
        return gone(str(exc))
    if isinstance(exc, datastore.DiskFull):
        return ApiError(507, "InsufficientStorage", "the control plane's datastore disk is full: the write was not "
                        "stored (nothing acknowledged before is lost); free space on the server's data disk and retry")
    return internal(f"{exc}; the write was not stored — retry, and check the server's disk if this persists")


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def method_not_allowed(verb: str, resource: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({verb} {resource})")


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
                    + (f" (got {content_type})" if content_type else ""))


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", message)


def success_status(name: str, group: str, kind: str, uid: str) -> dict[str, Any]:
    details = _details(name, group, kind)
    details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
