"""Registry errors in the OCI Distribution specification's JSON format.

Handlers raise `RegistryError(code, message)`; the app's middleware renders it as
`{"errors": [{"code", "message", "detail"}]}` with the HTTP status the spec gives the code.
"""

from __future__ import annotations

import errno
from typing import Any

# Error codes of the OCI Distribution specification (v1.1) and their usual HTTP status.
STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
}


class RegistryError(Exception):
    def __init__(self, code: str, message: str, *, detail: Any = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status or STATUS.get(code, 500)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return {"errors": [err]}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", f"blob {digest} is not known to this repository", detail={"digest": digest})


def manifest_unknown(name: str, reference: str) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", f"manifest {name}:{reference} is not known",
                         detail={"name": name, "reference": reference})


def name_unknown(name: str) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", f"repository {name} is not known", detail={"name": name})


def upload_unknown(uuid: str) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {uuid} is not known (finished, cancelled or expired)",
                         detail={"uuid": uuid})


def read_only(retry_after: int = 5) -> RegistryError:
    return RegistryError("UNSUPPORTED", "the registry is read-only while garbage collection runs; retry in a "
                         "few seconds", detail={"reason": "read-only during garbage collection"},
                         status=405, headers={"Retry-After": str(retry_after)})


def no_space(exc: BaseException) -> bool:
    """The storage is full (ENOSPC, or a quota: EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def storage_full() -> RegistryError:
    """507: nothing of the request was stored (a partial upload is dropped); room frees it."""
    return RegistryError("UNKNOWN", "DVCR's storage is full: nothing of this request was stored (a partial upload "
                         "is dropped); free space on DVCR's disk, or delete unused images, and push again", status=507)

