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


@functools.lru_cache(maxsize=4096)
def compiled(pattern: str) -> Any:
    """The RE2 program of `pattern` (cached: schemas share their patterns)."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(reason) from None


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text` (JSON Schema's `pattern` is unanchored)."""
    return compiled(pattern).search(text) is not None


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
