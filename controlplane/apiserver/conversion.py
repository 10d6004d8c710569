"""The API server's side of version conversion: stored objects shown in the requested version.

Every served version reads and writes the one storage version of its resource; this module is
where an object crosses between the two (:mod:`controlplane.api.conversions` holds the field
mappings). A value that cannot be converted is the client's bad input: a 422 naming the field.
"""

from __future__ import annotations

from typing import Any

from controlplane.api.conversions import ConversionError, convert
from controlplane.apiserver import errors
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.resources import ResourceInfo


def _convert(info: ResourceInfo, obj: dict[str, Any], version: str) -> dict[str, Any]:
    try:
        return convert(obj, info.group, info.kind, version)
    except ConversionError as exc:
        name = str((obj.get("metadata") or {}).get("name") or "")
        raise errors.invalid(info.kind, info.group, name,
                             [Cause(exc.field, f"Invalid value: {exc.message}")]) from exc


def view(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` (a copy the caller owns) as the version ``info`` serves."""
    return _convert(info, obj, info.version)


def to_storage(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` (served version) as it is stored."""
    return _convert(info, obj, info.storage_version or info.version)
