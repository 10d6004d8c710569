"""Kubernetes-style field paths (`spec.disks[0].name`) and value rendering for error messages."""

from __future__ import annotations

from typing import Any


def field_path(parts: Any) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int) or out and not str(p).replace("-", "").replace("_", "").isalnum():
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def render_value(v: Any) -> str:
    """A value as kube-apiserver prints it after `Invalid value:`."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (dict, list)) or v is None:
        return f'"{json_type(v)}"'
    return str(v)
