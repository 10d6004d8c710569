"""Sets of field paths, the unit of ownership in server-side apply.

A path is a tuple of elements written as kube's `FieldsV1` keys: `f:<field>` for a field
or map key, `k:{"name":"x"}` for an item of a map list, `v:"x"` for an item of a set list,
`i:<n>` for an item of an atomic-by-position list. `to_set` is what an applier owns (the
leaves of its configuration, plus list items, map keys that aren't declared fields and
empty or null values); `compare` is what an update added, modified or removed (a map or
list that appears owns itself too, hence the `.` in `FieldsV1`). Both follow
structured-merge-diff so the result reads like kube-apiserver's managedFields.
"""

from __future__ import annotations

from typing import Any

import orjson

from controlplane.apiserver.apply import shapes

Path = tuple[str, ...]
FieldSet = set[Path]
MISSING: Any = object()

# server-owned or identifying fields that no manager owns (kube's stripped set)
STRIPPED: frozenset[Path] = frozenset({
    ("f:apiVersion",), ("f:kind",), ("f:metadata",),
    *(("f:metadata", f"f:{k}") for k in ("name", "namespace", "creationTimestamp", "selfLink", "uid", "generation",
                                          "managedFields", "resourceVersion", "deletionTimestamp",
                                          "deletionGracePeriodSeconds", "generateName")),
})


def strip(paths: FieldSet, ignored: tuple[Path, ...] = ()) -> FieldSet:
    """`paths` without the server-owned fields and anything under an `ignored` prefix."""
    out = set()
    for p in paths:
        if p in STRIPPED or len(p) >= 2 and p[:2] in STRIPPED:
            continue
        if any(p[:len(pre)] == pre for pre in ignored):
            continue
        out.add(p)
    return out


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def item_element(item: Any, kind: str, keys: list[str], index: int, defaults: dict[str, Any] | None = None) -> str:
    """The path element naming one list item (a missing map key takes its schema default, as
    in structured-merge-diff; an item still missing one is named by position)."""
    if kind == "set" and not isinstance(item, (dict, list)):
        return "v:" + _json(item)
    if kind == "map" and isinstance(item, dict) and keys:
        values = {k: item[k] if k in item else (defaults or {}).get(k) for k in keys}
        if all(v is not None for v in values.values()):
            return "k:" + _json(values)
    return f"i:{index}"


def _items(value: list[Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    kind, keys = shapes.list_type(schema)
    defaults = shapes.key_defaults(schema)
    return {item_element(item, kind, keys, i, defaults): item for i, item in enumerate(value)}


# -- what an applier owns -----------------------------------------------------------------------
def to_set(obj: Any, schema: dict[str, Any] | None) -> FieldSet:
    out: FieldSet = set()
    _to_set(obj, schema, (), out)
    return out


def _to_set(value: Any, schema: dict[str, Any] | None, path: Path, out: FieldSet) -> None:
    if isinstance(value, dict):
        if shapes.map_is_atomic(schema):
            out.add(path)
            return
        for k, v in value.items():
            sub, named = shapes.child(schema, k)
            p = (*path, f"f:{k}")
            _to_set(v, sub, p, out)
            if v is None or v == {} or not named:
                out.add(p)
    elif isinstance(value, list):
        kind, _keys = shapes.list_type(schema)
        if kind == "atomic":
            out.add(path)
            return
        sub = shapes.items(schema)
        for el, item in _items(value, schema).items():
            p = (*path, el)
            _to_set(item, sub, p, out)
            out.add(p)
    else:
        out.add(path)


# -- what an update changed ---------------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def compare(old: Any, new: Any, schema: dict[str, Any] | None) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, modified, removed) from `old` to `new`."""
    added: FieldSet = set()
    modified: FieldSet = set()
    removed: FieldSet = set()
    _compare(old, new, schema, (), added, modified, removed)
    return added, modified, removed


def _children(value: Any, schema: dict[str, Any] | None) -> dict[str, tuple[Any, dict[str, Any] | None]]:
    if isinstance(value, dict):
        return {f"f:{k}": (v, shapes.child(schema, k)[0]) for k, v in value.items()}
    sub = shapes.items(schema)
    return {el: (item, sub) for el, item in _items(value, schema).items()}


def _compare_leaf(old: Any, new: Any, path: Path, added: FieldSet, modified: FieldSet, removed: FieldSet) -> None:
    """A value compared as a whole (a scalar, an atomic container, or two empty ones)."""
    if old is MISSING:
        added.add(path)
    elif new is MISSING:
        removed.add(path)
    elif not _same(old, new):
        modified.add(path)


def _compare(old: Any, new: Any, schema: dict[str, Any] | None, path: Path,
             added: FieldSet, modified: FieldSet, removed: FieldSet) -> None:
    old_c = isinstance(old, (dict, list))
    new_c = isinstance(new, (dict, list))
    if not old_c and not new_c:
        _compare_leaf(old, new, path, added, modified, removed)
        return
    container = new if new_c else old
    atomic = shapes.map_is_atomic(schema) if isinstance(container, dict) else shapes.list_type(schema)[0] == "atomic"
    if old_c and new_c and type(old) is not type(new):
        modified.add(path)
        _compare(MISSING, new, schema, path, added, modified, set())
        return
    if atomic or not old and not new:
        _compare_leaf(old, new, path, added, modified, removed)
        return
    if old_c and new_c and old == new and orjson.dumps(old) == orjson.dumps(new):
        return  # an unchanged subtree (as JSON: 1, 1.0 and true differ), compared in C, not field by field
    if not old_c:
        (added if old is MISSING else modified).add(path)
        old = type(new)()
    elif not new_c:
        (removed if new is MISSING else modified).add(path)
        new = type(old)()
    lhs = _children(old, schema)
    rhs = _children(new, schema)
    for el, (value, sub) in rhs.items():
        _compare(lhs[el][0] if el in lhs else MISSING, value, sub, (*path, el), added, modified, removed)
    for el, (value, sub) in lhs.items():
        if el not in rhs:
            _compare(value, MISSING, sub, (*path, el), added, modified, removed)


# -- FieldsV1 -----------------------------------------------------------------------------------
_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


def _sort_key(el: str) -> tuple[int, str]:
    return (_ORDER.get(el[:1], 4), el)


def to_fields_v1(paths: FieldSet) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for p in paths:
        node = tree
        for el in p:
            node = node.setdefault(el, {})
    return _render(tree, (), paths)


def _render(node: dict[str, Any], path: Path, members: FieldSet) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if node and path in members:
        out["."] = {}
    for el in sorted(node, key=_sort_key):
        out[el] = _render(node[el], (*path, el), members)
    return out


def from_fields_v1(doc: Any) -> FieldSet:
    out: FieldSet = set()
    _walk_v1(doc, (), out)
    return out


def _walk_v1(doc: Any, path: Path, out: FieldSet) -> None:
    if not isinstance(doc, dict):
        raise ValueError(f"fieldsV1 at {path_string(path) or '.'} must be an object")
    if not doc and path:
        out.add(path)
    for key, sub in doc.items():
        if key == ".":
            out.add(path)
        elif isinstance(key, str) and key[:2] in ("f:", "k:", "v:", "i:"):
            _walk_v1(sub, (*path, key), out)
        else:
            raise ValueError(f"fieldsV1: unknown key {key!r}")


def path_string(path: Path) -> str:
    """A path as kube prints it in conflicts: `.spec.containers[name="x"].image`."""
    out = ""
    for el in path:
        kind, rest = el[:1], el[2:]
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            keys = orjson.loads(rest)
            out += "[" + ",".join(f"{k}={_json(v)}" for k, v in keys.items()) + "]"
        elif kind == "v":
            out += "[=" + rest + "]"
        else:
            out += f"[{rest}]"
    return out
