"""Why an import failed, sorted by what the caller does next.

`reason` is a stable word the image controller can put into a condition; `temporary`
says whether retrying the same import later may succeed (a registry or web server that
was down) or not (a checksum mismatch, an unsupported format).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class ImportFailed(Exception):
    def __init__(self, reason: str, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.temporary = temporary

    def to_json(self) -> dict[str, object]:
        return {"reason": self.reason, "message": self.message, "temporary": self.temporary}


def source_error(message: str, *, temporary: bool = True) -> ImportFailed:
    return ImportFailed("SourceUnavailable", message, temporary=temporary)


def format_error(message: str) -> ImportFailed:
    return ImportFailed("UnsupportedFormat", message)


def checksum_error(message: str) -> ImportFailed:
    return ImportFailed("ChecksumMismatch", message)


def push_error(message: str) -> ImportFailed:
    return ImportFailed("PushFailed", message, temporary=True)


def redact_url(url: str) -> str:
    """A URL safe to show and store: no user info, no query (it may hold a signature)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
