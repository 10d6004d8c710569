"""Checksums a user gives for a source (DVP's `dataSource.http.checksum` and
`dataSource.upload.checksum`): md5, sha1, sha256 and sha512 of the file as downloaded or
uploaded. All given are checked; one mismatch fails the import before anything becomes
visible in DVCR.

DVP also takes streebog256/streebog512 (GOST R 34.11-2012). They are verified when this
Python's hashlib (its OpenSSL) provides them; otherwise such a checksum is refused with a
message saying so, never skipped: an unchecked checksum would read as a verified one."""

from __future__ import annotations

import hashlib
from typing import Any

from controlplane.dvcr.importer.errors import ImportFailed, checksum_error

LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128, "streebog256": 64, "streebog512": 128}


def available(alg: str) -> bool:
    """Whether this process can compute ``alg`` (hashlib's OpenSSL may lack the GOST hashes)."""
    try:
        hashlib.new(alg)
    except ValueError:
        return False
    return True


def unavailable_message(alg: str) -> str:
    usable = ", ".join(a for a in LENGTHS if available(a))
    return (f"checksum {alg} (GOST R 34.11-2012) cannot be verified here: this platform has no implementation "
            f"of the algorithm; give one of {usable} instead")


def parse_checksum(value: str) -> tuple[str, str]:
    """'sha256:abc...' (or 'sha256=abc...') -> ('sha256', 'abc...')."""
    alg, sep, hex_ = value.replace("=", ":", 1).partition(":")
    alg, hex_ = alg.strip().lower(), hex_.strip().lower()
    if not sep or alg not in LENGTHS:
        raise ImportFailed("InvalidSource", f"checksum {value!r}: expected ALGORITHM:HEX with ALGORITHM one of "
                           + ", ".join(LENGTHS))
    if len(hex_) != LENGTHS[alg] or any(c not in "0123456789abcdef" for c in hex_):
        raise ImportFailed("InvalidSource", f"checksum {alg}: expected {LENGTHS[alg]} hex characters, "
                           f"got {len(hex_)}")
    if not available(alg):
        raise ImportFailed("InvalidSource", unavailable_message(alg))
    return alg, hex_


class Checksums:
    def __init__(self, expected: dict[str, str] | None) -> None:
        self.expected: dict[str, str] = {}
        for alg, hex_ in (expected or {}).items():
            a, h = parse_checksum(f"{alg}:{hex_}")
            self.expected[a] = h
        self.hashers: dict[str, Any] = {alg: hashlib.new(alg) for alg in self.expected}

    def verify(self) -> dict[str, str]:
        """The verified checksums; raises ChecksumMismatch naming the algorithm and both values."""
        for alg, want in self.expected.items():
            got = self.hashers[alg].hexdigest()
            if got != want:
                raise checksum_error(f"{alg} checksum mismatch: the source has {got}, expected {want}; "
                                     "nothing was stored")
        return dict(self.expected)
