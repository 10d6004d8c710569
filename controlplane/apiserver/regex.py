"""Schema `pattern`s run as kube-apiserver runs them: RE2 (Go's regexp syntax), in time linear in
the value.

Python's `re` backtracks: an alternation whose branches overlap, under a repeat, takes 2^n steps
on a value that fails after n characters. DVP's own URL pattern (a VirtualImage's
`spec.dataSource.http.url`) is one: `http://`, 30 digits and a space held a core for minutes, and
the API server's other requests with it. RE2 does not backtrack, so a value costs its length.
RE2 also gives a pattern Go's meaning: `$` is the end of the value (Python's `$` also matches
before a final newline), and a pattern Go refuses (lookaround, backreferences) is refused when its
CRD is written, with the field named, as kube-apiserver refuses it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is the writer's error, answered in the 422: not the server log's


class PatternError(ValueError):
    """A pattern RE2 (and so Kubernetes) does not take; the message is RE2's reason."""


class Program:
    """A pattern compiled by RE2, asked only whether it matches somewhere in a value (all a schema
    asks). RE2's matcher is called directly: about 1 µs, where the module's `search` also builds a
    match object with its spans in characters (6-8 µs, three times Python's `re` on a valid
    VirtualImage, whose checksums have six patterns)."""

    __slots__ = ("_match",)

    def __init__(self, pattern: str) -> None:
        try:
            self._match = re2.compile(pattern, _OPTIONS)._regexp.Match
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise PatternError(reason) from None

    def search(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")  # a lone surrogate cannot match: refused, not a 500
        return bool(self._match(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH)


_UNANCHORED = re2._Anchor.UNANCHORED
_NO_MATCH = (-1, -1)


@functools.lru_cache(maxsize=4096)
def compiled(pattern: str) -> Program:
    """The RE2 program of `pattern` (cached: schemas share their patterns)."""
    return Program(pattern)


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text` (JSON Schema's `pattern` is unanchored)."""
    return compiled(pattern).search(text)


def schema_pattern_errors(schema: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path under the schema, message) for each `pattern` in a CRD's schema that RE2 does
    not take, in kube-apiserver's words."""
    if not isinstance(schema, dict):
        return
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            compiled(pattern)
        except PatternError as exc:
            yield (f"{path}.pattern", f"Invalid value: {pattern!r}: must be a valid regular expression, "
                                      f"but isn't: {exc}")
    for key in ("properties", "patternProperties", "definitions"):
        for name, sub in (schema.get(key) or {}).items() if isinstance(schema.get(key), dict) else ():
            yield from schema_pattern_errors(sub, f"{path}.{key}[{name}]")
    for key in ("items", "additionalProperties", "not"):
        yield from schema_pattern_errors(schema.get(key), f"{path}.{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key) or ()) if isinstance(schema.get(key), list) else ():
            yield from schema_pattern_errors(sub, f"{path}.{key}[{i}]")
