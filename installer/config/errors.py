"""Config errors as users read them: `FILE:LINE:COLUMN PATH: MESSAGE`, several at once.

`ConfigIssue` is one error with its position; `ConfigInvalid` carries all of them (exit
status 2 in the CLI). `describe_pydantic_error()` turns one pydantic error into our sentence,
saying what was expected and, unless the field can hold a secret, what was found.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

Loc = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One error in a config file."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where} {self.message}"


class ConfigInvalid(Exception):
    """The config cannot be used; `issues` says every reason found, in file order."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = sorted(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _secret_path(loc: Loc) -> bool:
    return any(isinstance(p, str) and ("password" in p.lower() or "passphrase" in p.lower()) for p in loc)


def _model_fields_at(root: type[BaseModel], loc: Loc) -> list[str]:
    """YAML keys allowed in the mapping at `loc` (used to suggest the right spelling)."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        by_alias = {(f.alias or n): f for n, f in current.model_fields.items()}
        if part not in by_alias:
            return []
        current = by_alias[part].annotation
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [(f.alias or n) for n, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """The model type inside `X | None` and `list[X]`."""
    for _ in range(4):
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        elif origin in (list, tuple, set, frozenset):
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation
    return annotation


def describe_pydantic_error(error: Any, root: type[BaseModel], *, raw: str | None = None) -> str:
    """One pydantic error dict -> the sentence shown after the field path (`raw`: the value
    as written in the YAML, when known)."""
    kind = error["type"]
    loc: Loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    value = error.get("input")
    shown = "" if _secret_path(loc) else f", got {_quote(value)}"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _model_fields_at(root, loc[:-1])
        name = str(loc[-1])
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        listing = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"unknown field{hint}{listing}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"expected {expected}{shown}"
    if kind == "string_type":
        if isinstance(value, int | float) and not isinstance(value, bool) and not _secret_path(loc):
            text = raw if raw is not None else str(value)
            return f'expected a string, got the number {text} (quote it: "{text}")'
        return f"expected a string{shown}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer{shown}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number{shown}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false{shown}"
    if kind in ("list_type", "tuple_type", "set_type"):
        return f"expected a list{shown}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping{shown}"
    if kind in ("path_type",):
        return f"expected a file path{shown}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}{shown}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}{shown}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}{shown}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}{shown}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"needs at least {n} item{'s' if n != 1 else ''}"
    if kind == "too_long":
        return f"allows at most {ctx.get('max_length')} items"
    return str(error["msg"])
