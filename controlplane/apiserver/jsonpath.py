"""The JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[*].b`, `.a['k.x']`,
and filters `[?(@.type=="Ready")]` (==, != on strings, numbers, booleans)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_FILTER = re.compile(r"""^\?\(@((?:\.[\w\-]+)+)\s*(==|!=)\s*(?:'([^']*)'|"([^"]*)"|([\w.\-]+))\)$""")


@lru_cache(maxsize=512)
def _compile(expr: str) -> tuple[tuple[str, Any], ...]:
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    if expr.startswith("$"):
        expr = expr[1:]
    steps: list[tuple[str, Any]] = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == ".":
            j = i + 1
            name = ""
            while j < len(expr) and expr[j] not in ".[":
                if expr[j] == "\\" and j + 1 < len(expr):
                    name += expr[j + 1]
                    j += 2
                    continue
                name += expr[j]
                j += 1
            if name:
                steps.append(("field", name))
            i = j
        elif c == "[":
            j = expr.index("]", i)
            if expr[i + 1] == "?":  # a filter may contain ']' inside quotes; find the closing ')]'
                j = expr.index(")]", i) + 1
            inner = expr[i + 1:j].strip()
            if inner == "*":
                steps.append(("all", None))
            elif inner.startswith("?"):
                m = _FILTER.match(inner)
                if not m:
                    raise ValueError(f"unsupported JSONPath filter: {inner}")
                lit = next((g for g in m.group(3, 4) if g is not None), None)
                value: Any = lit if lit is not None else _literal(m.group(5))
                steps.append(("filter", (tuple(m.group(1).strip(".").split(".")), m.group(2), value)))
            elif inner[:1] in "'\"":
                steps.append(("field", inner[1:-1]))
            else:
                steps.append(("index", int(inner)))
            i = j + 1
        else:
            raise ValueError(f"unsupported JSONPath {expr!r} at {i}")
    return tuple(steps)


def _literal(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def find(obj: Any, expr: str) -> list[Any]:
    """All values `expr` selects in `obj` (empty when nothing matches)."""
    current = [obj]
    for kind, arg in _compile(expr):
        nxt: list[Any] = []
        for v in current:
            if kind == "field" and isinstance(v, dict) and arg in v or kind == "index" and isinstance(v, list) and -len(v) <= arg < len(v):
                nxt.append(v[arg])
            elif kind == "all":
                nxt.extend(v if isinstance(v, list) else v.values() if isinstance(v, dict) else [])
            elif kind == "filter" and isinstance(v, list):
                path, op, want = arg
                for item in v:
                    got: Any = item
                    for p in path:
                        got = got.get(p) if isinstance(got, dict) else None
                    if (got == want) == (op == "=="):
                        nxt.append(item)
        current = nxt
    return current
