"""Server-side printing: `meta.k8s.io/v1` Table answers for `kubectl get`.

kubectl asks with `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`; we answer with
the kind's columns (CRD `additionalPrinterColumns`, or the built-in kinds' own), the
`priority` that `-o wide` uses, and each row's object as PartialObjectMetadata. As in
kube-apiserver, `date` columns become ages ("5m", "3h2m") on the server.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.apiserver import jsonpath
from controlplane.apiserver.resources import Column, ResourceInfo

TABLE_MEDIA = "as=Table"


def wants_table(accept: str) -> bool:
    for part in accept.split(","):
        params = [p.strip() for p in part.split(";")]
        if "as=Table" in params and "g=meta.k8s.io" in params and ("v=v1" in params or "v=v1beta1" in params):
            return True
    return False


def table_version(accept: str) -> str:
    for part in accept.split(","):
        params = [p.strip() for p in part.split(";")]
        if "as=Table" in params and "v=v1" in params:
            return "v1"
    return "v1beta1"


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration (what `kubectl get` shows as AGE)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m{rem}s" if rem else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = (s % 3600) // 60
        return f"{hours}h{rem}m" if rem else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d{rem}h" if rem else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        rem = days % 365
        return f"{days // 365}y{rem}d" if rem else f"{days // 365}y"
    return f"{hours // 24 // 365}y"


def _age(value: Any, now: dt.datetime) -> Any:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"<invalid: {value}>"
    return human_duration((now - t).total_seconds())


def columns_of(info: ResourceInfo) -> list[Column]:
    return [Column("Name", "string", ".metadata.name", format="name",
                   description="Name must be unique within a namespace.")] + info.columns


def _cell(col: Column, obj: dict[str, Any], now: dt.datetime) -> Any:
    if col.compute is not None:
        value = col.compute(obj)
    else:
        found = jsonpath.find(obj, col.json_path)
        if not found:
            return None
        value = found[0]
    if value is None:
        return None
    if col.type == "date":
        return _age(value, now)
    if col.type == "string":
        if isinstance(value, (dict, list)):
            import orjson

            return orjson.dumps(value).decode()
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if col.type == "integer":
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if col.type == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if col.type == "boolean":
        return value if isinstance(value, bool) else None
    return value


def column_definitions(info: ResourceInfo) -> list[dict[str, Any]]:
    return [{"name": c.name, "type": c.type, "format": c.format, "description": c.description,
             "priority": c.priority} for c in columns_of(info)]


def row(info: ResourceInfo, obj: dict[str, Any], *, include: str, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    cells = [_cell(c, obj, now) for c in columns_of(info)]
    r: dict[str, Any] = {"cells": cells}
    if include == "Object":
        r["object"] = obj
    elif include != "None":
        r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": obj.get("metadata", {})}
    return r


def table(info: ResourceInfo, objects: list[dict[str, Any]], *, version: str, include: str,
          list_meta: dict[str, Any] | None = None, headers: bool = True) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    out: dict[str, Any] = {
        "kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": list_meta or {},
        "rows": [row(info, o, include=include, now=now) for o in objects],
    }
    if headers:
        out["columnDefinitions"] = column_definitions(info)
    return out
