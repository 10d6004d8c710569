"""Merging an applied configuration into the live object, and removing what an applier
stopped applying.

`merge` is structured-merge-diff's merge: the configuration wins on every field it sets;
granular maps merge key by key, `set` and `map` lists item by item (live order kept, new
items appended), atomic maps and lists are replaced whole. `remove` takes paths out of an
object; a declared field left empty by the removal goes too unless someone still owns
something under it (kube's named-fields rule).
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.apiserver.apply import shapes
from controlplane.apiserver.apply.fieldsets import FieldSet, Path, item_element


def merge(live: Any, config: Any, schema: dict[str, Any] | None) -> Any:
    if isinstance(live, dict) and isinstance(config, dict) and not shapes.map_is_atomic(schema):
        out = dict(live)
        for k, v in config.items():
            out[k] = merge(live[k], v, shapes.child(schema, k)[0]) if k in live else copy.deepcopy(v)
        return out
    if isinstance(live, list) and isinstance(config, list):
        kind, keys = shapes.list_type(schema)
        if kind != "atomic":
            sub = shapes.items(schema)
            defaults = shapes.key_defaults(schema)
            rhs = {item_element(item, kind, keys, i, defaults): item for i, item in enumerate(config)}
            seen: set[str] = set()
            result: list[Any] = []
            for i, item in enumerate(live):
                el = item_element(item, kind, keys, i, defaults)
                seen.add(el)
                result.append(merge(item, rhs[el], sub) if el in rhs else item)
            result.extend(copy.deepcopy(item) for el, item in rhs.items() if el not in seen)
            return result
    return copy.deepcopy(config)


def _find(node: Any, el: str, schema: dict[str, Any] | None) -> tuple[Any, dict[str, Any] | None]:
    """(key or index, child schema) of path element `el` in `node`, or (None, None)."""
    if isinstance(node, dict) and el.startswith("f:"):
        k = el[2:]
        return (k, shapes.child(schema, k)[0]) if k in node else (None, None)
    if isinstance(node, list):
        kind, keys = shapes.list_type(schema)
        defaults = shapes.key_defaults(schema)
        for i, item in enumerate(node):
            if item_element(item, kind, keys, i, defaults) == el:
                return i, shapes.items(schema)
    return None, None


def remove(obj: dict[str, Any], paths: FieldSet, schema: dict[str, Any] | None, *, still_owned: FieldSet) -> None:
    """Remove `paths` from `obj` in place (outermost first: a list item goes whole before its
    fields would change how it is named)."""
    owned_prefixes = {p[:n] for p in still_owned for n in range(1, len(p) + 1)}
    for path in sorted(paths, key=len):
        if path not in owned_prefixes:  # something under it is still owned: only its own parts go
            _remove(obj, path, schema, owned_prefixes)


def _remove(obj: dict[str, Any], path: Path, schema: dict[str, Any] | None, owned_prefixes: set[Path]) -> None:
    trail: list[tuple[Any, Any, Path]] = []  # (container, key, path of the child)
    node: Any = obj
    sub = schema
    for depth, el in enumerate(path):
        key, child_schema = _find(node, el, sub)
        if key is None:
            return
        trail.append((node, key, path[:depth + 1]))
        node, sub = node[key], child_schema
    container, key, _ = trail.pop()
    del container[key]
    # a declared field emptied by the removal goes too, unless someone owns something under it
    while trail:
        container, key, here = trail.pop()
        value = container[key]
        if not isinstance(container, dict) or value not in ({}, []) or here in owned_prefixes:
            return
        del container[key]
