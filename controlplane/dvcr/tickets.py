"""Upload tickets: the unguessable, expiring upload URLs DVCR hands out (DVP's
`status.imageUploadURLs`), and the status the image controller reads back.

A ticket is stored as `upload-tickets/<id>.json` (see `layout`) with the SHA-256 of its
token, never the token itself; the token appears only in the URL returned once, to the
caller that asked for it. Phases: WaitingForUpload -> Uploading -> Ready | Failed, or
Expired once `expiresAt` passes without a finished upload.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from controlplane.common.pki import new_token, token_digest
from controlplane.dvcr import layout
from controlplane.dvcr.driver import PathNotFound, StorageDriver

WAITING, UPLOADING, READY, FAILED, EXPIRED = "WaitingForUpload", "Uploading", "Ready", "Failed", "Expired"


@dataclass
class Ticket:
    id: str
    token_sha256: str
    repository: str
    tag: str
    checksums: dict[str, str]
    created_at: float
    expires_at: float
    phase: str = WAITING
    offset: int = 0
    total: int | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    source: str = "upload"
    extra: dict[str, Any] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "repository": self.repository, "tag": self.tag, "phase": self.phase,
                "offset": self.offset, "total": self.total, "progress": self.progress,
                "expiresAt": _iso(self.expires_at), "createdAt": _iso(self.created_at),
                "result": self.result, "error": self.error}

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "tokenSha256": self.token_sha256, "repository": self.repository, "tag": self.tag,
                "checksums": self.checksums, "createdAt": self.created_at, "expiresAt": self.expires_at,
                "phase": self.phase, "result": self.result, "error": self.error}

    @classmethod
    def from_record(cls, doc: dict[str, Any]) -> Ticket:
        t = cls(doc["id"], doc["tokenSha256"], doc["repository"], doc["tag"], doc.get("checksums") or {},
                doc["createdAt"], doc["expiresAt"], doc.get("phase", WAITING), result=doc.get("result"),
                error=doc.get("error"))
        if t.phase == UPLOADING:  # the process restarted mid-upload: the bytes so far are gone
            t.phase = WAITING
            t.error = {"reason": "UploadInterrupted", "message": "DVCR restarted during the upload; upload again"}
        return t


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Tickets:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self._by_id: dict[str, Ticket] = {}
        self._by_token: dict[str, str] = {}

    def load(self) -> None:
        try:
            names = self.driver.list(layout.TICKETS)
        except PathNotFound:
            return
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                t = Ticket.from_record(json.loads(self.driver.get(f"{layout.TICKETS}/{name}")))
            except (PathNotFound, ValueError, KeyError):
                continue
            self._by_id[t.id] = t
            self._by_token[t.token_sha256] = t.id

    def create(self, repository: str, tag: str, *, checksums: dict[str, str], ttl: float) -> tuple[Ticket, str]:
        token = new_token()
        now = time.time()
        t = Ticket(uuid.uuid4().hex, token_digest(token), repository, tag, checksums, now, now + ttl)
        self._by_id[t.id] = t
        self._by_token[t.token_sha256] = t.id
        self.save(t)
        return t, token

    def save(self, t: Ticket) -> None:
        self.driver.put(layout.ticket(t.id), json.dumps(t.to_record()).encode())

    def get(self, ticket_id: str) -> Ticket | None:
        return self._by_id.get(ticket_id)

    def by_token(self, token: str) -> Ticket | None:
        tid = self._by_token.get(token_digest(token))
        return self._by_id.get(tid) if tid else None

    def expire(self, *, now: float | None = None, forget_after: float = 24 * 3600) -> list[Ticket]:
        """Mark unfinished tickets past their expiry; forget tickets expired long ago."""
        now = now or time.time()
        changed = []
        for t in list(self._by_id.values()):
            if t.phase in (WAITING, FAILED) and now >= t.expires_at:
                t.phase = EXPIRED
                self.save(t)
                changed.append(t)
            if now >= t.expires_at + forget_after and t.phase != UPLOADING:
                self._by_id.pop(t.id, None)
                self._by_token.pop(t.token_sha256, None)
                with contextlib.suppress(PathNotFound):
                    self.driver.delete(layout.ticket(t.id))
        return changed
