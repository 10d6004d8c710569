"""`/healthz`, `/livez` and `/readyz` as kube-apiserver serves them: named checks, each listed with
`?verbose` ("[+]ping ok" ... "readyz check passed"), listed whenever one fails, excluded with
`?exclude=<name>`, and each reachable alone at `/readyz/<name>`.

Components register their checks (`HealthChecks.add`): the datastore, the start-up steps,
and whatever a supervisor runs next to the API server, so readiness is an API, not a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

ENDPOINTS = ("healthz", "livez", "readyz")
Check = Callable[[], str | None]
"""A check returns None when healthy, or why it is not (never a secret)."""
Source = Callable[[], list[tuple[str, str | None]]]
"""Readiness checks known only when asked (the supervisor's components): (name, problem) pairs
whose problems are shown, as they say only what state a component is in."""


@dataclass(frozen=True)
class _Entry:
    name: str
    check: Check
    readiness_only: bool
    explained: bool = False


def _ok() -> str | None:
    return None


def _fixed(problem: str | None) -> Check:
    return lambda: problem


class HealthChecks:
    def __init__(self) -> None:
        self._entries: list[_Entry] = [_Entry("ping", _ok, False), _Entry("log", _ok, False)]
        self._sources: list[Source] = []

    def add(self, name: str, check: Check, *, readiness_only: bool = False) -> None:
        """Register (or replace) a check; `readiness_only` ones are not part of /livez."""
        self._entries = [e for e in self._entries if e.name != name]
        self._entries.append(_Entry(name, check, readiness_only))

    def add_source(self, source: Source) -> None:
        """Register readiness checks whose names come with each answer (see `Source`)."""
        self._sources.append(source)

    def _current(self, endpoint: str) -> list[_Entry]:
        entries = [e for e in self._entries if endpoint == "readyz" or not e.readiness_only]
        if endpoint == "readyz":
            for source in self._sources:
                entries += [_Entry(name, _fixed(problem), True, True) for name, problem in source()]
        return entries

    def names(self, endpoint: str) -> list[str]:
        return [e.name for e in self._current(endpoint)]

    def _run(self, entry: _Entry) -> str | None:
        try:
            return entry.check()
        except Exception as exc:  # a check that raises is a failing check, not a 500
            return f"{type(exc).__name__}: {exc}"

    def respond(self, endpoint: str, check_name: str, query: dict[str, str] | None = None,
                excluded: list[str] | None = None) -> web.Response:
        """Answer `/<endpoint>` (check_name "") or `/<endpoint>/<check_name>`."""
        query = query or {}
        fail_status = 503 if endpoint == "readyz" else 500
        entries = self._current(endpoint)
        if check_name:
            entry = next((e for e in entries if e.name == check_name), None)
            if entry is None:
                return web.Response(status=404, text="404 page not found\n")
            problem = self._run(entry)
            if problem is None:
                return web.Response(text="ok")
            return web.Response(status=fail_status, text=f"internal server error: {problem}\n")
        skip = set(excluded or [])
        lines: list[str] = []
        failed = False
        for entry in entries:
            if entry.name in skip:
                lines.append(f"[+]{entry.name} excluded: ok")
                continue
            problem = self._run(entry)
            if problem is None:
                lines.append(f"[+]{entry.name} ok")
            else:
                failed = True
                lines.append(f"[-]{entry.name} failed: {problem if entry.explained else 'reason withheld'}")
        unknown = sorted(skip - {e.name for e in entries})
        if unknown:
            lines.append(f"warn: some health checks cannot be excluded: no matches for {', '.join(repr(u) for u in unknown)}")
        if failed:
            return web.Response(status=fail_status, text="\n".join([*lines, f"{endpoint} check failed"]) + "\n")
        if "verbose" in query:
            return web.Response(text="\n".join([*lines, f"{endpoint} check passed"]) + "\n")
        return web.Response(text="ok")

    def handle(self, request: web.Request, path: str) -> web.Response | None:
        """The answer for a health path, or None when `path` is not one."""
        parts = path.strip("/").split("/", 1)
        if parts[0] not in ENDPOINTS:
            return None
        return self.respond(parts[0], parts[1] if len(parts) > 1 else "", dict(request.query),
                            request.query.getall("exclude", []))
