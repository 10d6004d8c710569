"""Digests, repository names and tags as the OCI Distribution specification defines them.

Every value that comes from a URL or a manifest goes through `parse_digest`, `check_name`
or `check_tag` before it touches storage, so a path built by `layout` can never escape
the storage root.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from controlplane.dvcr.errors import RegistryError

# Algorithms a registry must verify (the spec names sha256 and sha512) and their hex length.
ALGORITHMS = {"sha256": 64, "sha512": 128}

NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{NAME_COMPONENT}(?:/{NAME_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
MAX_NAME = 255


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> Any:
        return hashlib.new(self.algorithm)


def parse_digest(value: str, *, code: str = "DIGEST_INVALID") -> Digest:
    """A digest with a supported algorithm and hex of the right length, or a registry error."""
    m = DIGEST_RE.match(value or "")
    if not m:
        raise RegistryError(code, f"{value!r} is not a digest (expected ALGORITHM:HEX, e.g. sha256:<64 hex>)")
    alg, hex_ = m.group(1), m.group(2)
    if alg not in ALGORITHMS:
        raise RegistryError(code, f"digest algorithm {alg!r} is not supported (use sha256 or sha512)",
                            status=400)
    if len(hex_) != ALGORITHMS[alg] or not re.fullmatch(r"[0-9a-f]+", hex_):
        raise RegistryError(code, f"{value!r}: a {alg} digest is {ALGORITHMS[alg]} lowercase hex characters")
    return Digest(alg, hex_)


def is_digest(value: str) -> bool:
    return ":" in value


def digest_of(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}: lowercase letters, digits and "
                            "separators (. _ __ -) in components joined by '/'", detail={"name": name})
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {tag!r}: up to 128 of [A-Za-z0-9_.-], "
                            "not starting with '.' or '-'", detail={"tag": tag}, status=400)
    return tag
