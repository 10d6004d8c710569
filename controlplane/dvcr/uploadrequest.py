"""The fields of upload API requests, checked before anything is created.

`POST /dvcr/v1/uploads` and the upload URL's `Upload-Offset` header are client input: a
`ttlSeconds: 1e20` used to create a ticket whose expiry could not be rendered (500s, and the
ticket broken for good), `checksums: "zzz"` and `Upload-Offset: abc` were 500s. Each wrong
field is a 400 naming it, and nothing is created.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from controlplane.dvcr.errors import RegistryError
from controlplane.dvcr.importer.checksum import parse_checksum
from controlplane.dvcr.importer.errors import ImportFailed

MAX_TTL_SECONDS = 30 * 24 * 3600


def invalid(field: str, message: str) -> RegistryError:
    return RegistryError("UNSUPPORTED", f"invalid upload request: {field}: {message}", status=400,
                         detail={"field": field})


@dataclass(frozen=True)
class CreateRequest:
    repository: str
    tag: str
    checksums: dict[str, str]
    ttl: float | None


def parse_create(doc: Any) -> CreateRequest:
    if not isinstance(doc, dict):
        raise invalid("body", 'must be a JSON object with "repository"')
    repository = doc.get("repository")
    if not isinstance(repository, str) or not repository:
        raise invalid("repository", "must be a non-empty string")
    tag = doc.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise invalid("tag", "must be a string")
    return CreateRequest(repository, tag or "latest", _checksums(doc.get("checksums")), _ttl(doc.get("ttlSeconds")))


def _checksums(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("checksums", 'must be an object of ALGORITHM: HEX, e.g. {"sha256": "..."}')
    out: dict[str, str] = {}
    for alg, hex_ in value.items():
        if not isinstance(hex_, str):
            raise invalid(f"checksums.{alg}", "must be a string of hex digits")
        try:
            a, h = parse_checksum(f"{alg}:{hex_}")
        except ImportFailed as exc:
            raise invalid(f"checksums.{alg}", str(exc)) from exc
        out[a] = h
    return out


def _ttl(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 1 <= value <= MAX_TTL_SECONDS:
        raise invalid("ttlSeconds", f"must be a number of seconds from 1 to {MAX_TTL_SECONDS}, not {value!r}")
    return float(value)


def parse_offset(header: str) -> int:
    """`Upload-Offset`: a non-negative integer."""
    value = header.strip()
    if not value.isdigit() or len(value) > 19:
        raise invalid("Upload-Offset", f"must be a non-negative integer (bytes), not {header[:40]!r}")
    return int(value)
