"""The audit log: one `audit.k8s.io/v1` Event per request, as a JSON line in
`DATA_DIR/audit.log`, at the level the audit policy gives it (`audit_policy.py`; Metadata for
every request without a policy file) — who (user, groups, source address, user agent), what
(verb, resource, subresource, namespace, name, URI), the answer's code and the authorization
decision; at Request and RequestResponse also the JSON bodies. Requests that fail
authentication are recorded too (code 401, no user). Never a header, never the body of a
Secret or of an authentication request, never the value of a query parameter named like a
credential (`?token=`): tokens and Secret data cannot end up in it.

Lines are buffered and handed every `flush_every` seconds (or when `max_buffered` are
waiting) to one writer thread that appends them in one write — a busy disk (writeback
throttling) never stalls the event loop; the single thread keeps them in order. The file is
rotated when it passes `max_bytes` (audit.log.1 … audit.log.N, the oldest dropped). Files
are 0600. `close()` writes what is left and waits for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

from controlplane.apiserver.authz.rules import Attributes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditSettings:
    max_bytes: int = 100 * 1024 * 1024
    backups: int = 5
    flush_every: float = 0.5
    max_buffered: int = 1000


_second: list[Any] = [-1, ""]  # the last whole second seen and its formatted form
_ID_PREFIX = str(uuid.uuid4())[:24]  # auditIDs: this process's random prefix + a counter (UUID-shaped)
_ids = itertools.count()


def _now() -> str:
    """RFC 3339 with microseconds, UTC; the seconds part formatted once per second (this runs
    twice per request)."""
    t = time.time()
    sec = int(t)
    if sec != _second[0]:
        _second[0], _second[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_second[1]}.{int((t - sec) * 1_000_000):06d}Z"


def _audit_id() -> str:
    return f"{_ID_PREFIX}{next(_ids) & 0xFFFFFFFFFFFF:012x}"


CREDENTIAL_PARAMS = frozenset({"token", "access_token", "password", "client_secret"})
"""Query parameters a client may (wrongly) carry a credential in: their values never reach the log."""


def redacted_uri(uri: str) -> str:
    """The request URI with the values of `CREDENTIAL_PARAMS` replaced (the rest as sent)."""
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    parts = []
    for part in query.split("&"):
        name, eq, _value = part.partition("=")
        parts.append(f"{name}=REDACTED" if eq and unquote(name).lower() in CREDENTIAL_PARAMS else part)
    return f"{path}?{'&'.join(parts)}"


def event(attrs: Attributes, *, code: int, uri: str, source: str, user_agent: str, received: str,
          allowed: bool | None, reason: str, level: str = "Metadata") -> dict[str, Any]:
    """The audit Event of one finished request (its bodies, for levels that record them, are
    added by the caller). `allowed` None: no authorization decision (authentication failed)."""
    out: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": _audit_id(),
        "stage": "ResponseComplete", "requestURI": redacted_uri(uri), "verb": attrs.verb,
        "user": {"username": attrs.user, "groups": list(attrs.groups)} if attrs.user else {},
        "sourceIPs": [source] if source else [], "userAgent": user_agent,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": received, "stageTimestamp": _now(),
        "annotations": {} if allowed is None else {"authorization.k8s.io/decision": "allow" if allowed else "forbid",
                                                   "authorization.k8s.io/reason": reason},
    }
    if attrs.resource_request:
        ref: dict[str, str] = {"resource": attrs.resource, "apiGroup": attrs.group, "apiVersion": attrs.version}
        for key, value in (("namespace", attrs.namespace), ("name", attrs.name), ("subresource", attrs.subresource)):
            if value:
                ref[key] = value
        out["objectRef"] = ref
    return out


class AuditLog:
    def __init__(self, path: Path, settings: AuditSettings | None = None) -> None:
        self.path = path
        self.settings = settings or AuditSettings()
        self._buffer: list[bytes] = []
        self._scheduled = False
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dvp-audit")
        self._failing = False

    def record(self, entry: dict[str, Any]) -> None:
        self._buffer.append(orjson.dumps(entry) + b"\n")
        if len(self._buffer) >= self.settings.max_buffered:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_later(self.settings.flush_every, self.flush)
            except RuntimeError:  # no loop (tests, shutdown): write now
                self.flush()

    def flush(self) -> None:
        """Hand the buffered lines to the writer thread."""
        self._scheduled = False
        if not self._buffer:
            return
        data, self._buffer = b"".join(self._buffer), []
        self._writer.submit(self._write, data)

    def close(self) -> None:
        self.flush()
        self._writer.shutdown(wait=True)

    def _write(self, data: bytes) -> None:
        try:
            self._rotate_if_full(len(data))
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:  # a full disk: requests go on; the lines are lost, and that is said once
            if not self._failing:
                log.error("audit log %s: %d line(s) not written: %s (said once until writing works again)",
                          self.path, data.count(b"\n"), exc.strerror or exc)
            self._failing = True
            return
        if self._failing:
            log.warning("audit log %s: writing works again", self.path)
        self._failing = False

    def _rotate_if_full(self, adding: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size + adding <= self.settings.max_bytes:
            return
        for i in range(self.settings.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.settings.backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
