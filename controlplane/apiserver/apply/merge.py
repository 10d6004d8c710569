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


def remove(obj: dict[str, Any], paths: FieldSet, schema: dict[str, Any] | None, *, still_owned: FieldSet) -> None:
    """Remove `paths` from `obj` in place (outermost first: a list item goes whole before its
    fields would change how it is named). A list's items are found through an index of their
    path elements and leave it in one pass at the end: dropping all 8,000 entries of a set took
    11 s when each was found by a scan and deleted by a shift."""
    owned_prefixes = {p[:n] for p in still_owned for n in range(1, len(p) + 1)}
    lists = _Lists()
    for path in sorted(paths, key=len):
        if path not in owned_prefixes:  # something under it is still owned: only its own parts go
            _remove(obj, path, schema, owned_prefixes, lists)
    lists.compact()


class _Lists:
    """The lists one removal goes through: their items by path element, and the positions
    removed from each (positions stay as they were until `compact`)."""

    def __init__(self) -> None:
        self._index: dict[int, tuple[list[Any], dict[str, list[int]]]] = {}
        self._dropped: dict[int, set[int]] = {}

    def find(self, node: list[Any], el: str, schema: dict[str, Any] | None) -> int | None:
        """The position of the first item named `el` that is still there."""
        entry = self._index.get(id(node))
        if entry is None:
            kind, keys = shapes.list_type(schema)
            defaults = shapes.key_defaults(schema)
            at: dict[str, list[int]] = {}
            for i, item in enumerate(node):
                at.setdefault(item_element(item, kind, keys, i, defaults), []).append(i)
            entry = self._index[id(node)] = (node, at)  # the list is held: its id names it until the end
        dropped = self._dropped.get(id(node), set())
        return next((i for i in entry[1].get(el, ()) if i not in dropped), None)

    def drop(self, node: list[Any], position: int) -> None:
        self._dropped.setdefault(id(node), set()).add(position)

    def emptied(self, node: list[Any]) -> bool:
        return len(self._dropped.get(id(node), ())) == len(node)

    def compact(self) -> None:
        for key, dropped in self._dropped.items():
            node = self._index[key][0]
            node[:] = [item for i, item in enumerate(node) if i not in dropped]


def _remove(obj: dict[str, Any], path: Path, schema: dict[str, Any] | None, owned_prefixes: set[Path],
            lists: _Lists) -> None:
    trail: list[tuple[Any, Any, Path]] = []  # (container, key or position, path of the child)
    node: Any = obj
    sub = schema
    for depth, el in enumerate(path):
        key: Any = None
        if isinstance(node, dict) and el.startswith("f:"):
            key = el[2:] if el[2:] in node else None
            child_schema = shapes.child(sub, el[2:])[0] if key is not None else None
        elif isinstance(node, list):
            key = lists.find(node, el, sub)
            child_schema = shapes.items(sub)
        if key is None:
            return
        trail.append((node, key, path[:depth + 1]))
        node, sub = node[key], child_schema
    container, key, _ = trail.pop()
    if isinstance(container, list):
        lists.drop(container, key)
    else:
        del container[key]
    # a declared field emptied by the removal goes too, unless someone owns something under it
    while trail:
        container, key, here = trail.pop()
        value = container[key]
        emptied = value == {} if isinstance(value, dict) else isinstance(value, list) and lists.emptied(value)
        if not isinstance(container, dict) or not emptied or here in owned_prefixes:
            return
        del container[key]
