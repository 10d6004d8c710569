"""`x-kubernetes-validations` CEL rules of a structural schema, compiled once, run per write.

Rules are evaluated with the `cel-python` package (`celpy`). As in Kubernetes, a rule sees
the value at its schema node as `self`; a transition rule (one that mentions `oldSelf`) runs
only on updates where the old object has a value at the same place; a rule whose node is
absent from the object is not run. Failures become `Cause`s with the rule's message (or
`messageExpression`), `fieldPath` and `reason`.

On an update, a rule without `oldSelf` is not run where the value is unchanged from the old
object (Kubernetes' validation ratcheting, GA in 1.33): a status write does not pay for the rules
of a spec it cannot change. `self == oldSelf` on an unchanged value passes without evaluation.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import celpy
import orjson
from celpy import celtypes
from celpy.evaluation import CELEvalError

from controlplane.apiserver.cel_cost import OUT_OF_BUDGET, Budget, BudgetExceeded, CostedRunner
from controlplane.apiserver.cel_values import K8S_FUNCTIONS, escape_property, to_cel
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.fieldpath import field_path, json_type

log = logging.getLogger(__name__)

_env = celpy.Environment(runner_class=CostedRunner)
MEMO_SIZE = 4096
MEMO_MAX_SHAPES = 8
MEMO_MAX_SCALAR = 16384


class _Recording(celtypes.MapType):
    """The top-level map a rule sees as `self`, noting which properties the rule reads.

    A rule is a pure function of what it reads: when an evaluation read only properties P,
    any object with the same values of P gets the same verdict. Whole-map operations
    (iteration, size, equality) disable that shortcut for the evaluation.
    """

    reads: set[str]
    whole: bool

    def _note(self, key: Any) -> None:
        self.reads.add(str(key))

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)

    def __contains__(self, key: Any) -> bool:
        self._note(key)
        return super().__contains__(key)

    def _all(self) -> None:
        self.whole = True

    def __iter__(self) -> Any:
        self._all()
        return super().__iter__()

    def __len__(self) -> int:
        self._all()
        return super().__len__()

    def __eq__(self, other: Any) -> Any:
        self._all()
        return super().__eq__(other)

    def __ne__(self, other: Any) -> Any:
        self._all()
        return super().__ne__(other)

    __hash__ = None  # type: ignore[assignment]

    def keys(self) -> Any:
        self._all()
        return super().keys()

    def values(self) -> Any:
        self._all()
        return super().values()

    def items(self) -> Any:
        self._all()
        return super().items()


def _recording(value: Any) -> Any:
    if isinstance(value, celtypes.MapType):
        rec = _Recording(value)
        rec.reads, rec.whole = set(), False
        return rec
    return value


def _presence_only(source: str, prop: str) -> bool:
    """Whether `source` uses `self.<prop>` only as `has(self.<prop>)`: its verdict then depends on
    whether the property is there, not on its value (read from the text: cel-python's `has`
    evaluates the member like any read)."""
    if "self[" in source:
        return False
    name = re.escape(prop)
    uses = len(re.findall(rf"\bself\.{name}(?![A-Za-z0-9_])", source))
    return uses > 0 and uses == len(re.findall(rf"\bhas\(\s*self\.{name}\s*\)", source))


def _same(a: Any, b: Any) -> bool:
    """JSON-equal (Python's == alone takes `true` for `1`)."""
    return bool(a == b) and orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)


class _Memo:
    """Remembered verdicts of one rule (cel-python interprets every evaluation, ~1 ms)."""

    def __init__(self, source: str = "") -> None:
        self.source = source
        self.shapes: list[tuple[str, ...]] = []
        self.verdicts: OrderedDict[bytes, bool] = OrderedDict()
        self._presence: dict[str, bool] = {}

    def _pick(self, m: Any, prop: str) -> Any:
        if not isinstance(m, dict):
            return None
        presence = self._presence.get(prop)
        if presence is None:
            presence = self._presence[prop] = _presence_only(self.source, prop)
        return {"has": prop in m} if presence else m.get(prop)

    def _key(self, shape: tuple[str, ...] | None, cur: Any, old: Any) -> bytes | None:
        if shape is None:
            raw = orjson.dumps([cur, old], default=str)
            return b"=" + raw if len(raw) <= MEMO_MAX_SCALAR else None
        pick = [[self._pick(m, p) for p in shape] for m in (cur, old)]
        return "|".join(shape).encode() + b"=" + orjson.dumps(pick, default=str)

    def lookup(self, cur: Any, old: Any) -> bool | None:
        shapes: list[tuple[str, ...] | None] = list(self.shapes) if isinstance(cur, dict) else [None]
        for shape in shapes:
            key = self._key(shape, cur, old)
            if key is not None and key in self.verdicts:
                self.verdicts.move_to_end(key)
                return self.verdicts[key]
        return None

    def store(self, shape: tuple[str, ...] | None, cur: Any, old: Any, verdict: bool) -> None:
        if shape is not None and shape not in self.shapes:
            if len(self.shapes) >= MEMO_MAX_SHAPES:
                return
            self.shapes.append(shape)
        key = self._key(shape, cur, old)
        if key is None:
            return
        self.verdicts[key] = verdict
        if len(self.verdicts) > MEMO_SIZE:
            self.verdicts.popitem(last=False)


def _escaped_view(schema: dict[str, Any], value: Any) -> Any:
    """The value's top-level keys as CEL names them (for memo keys)."""
    if isinstance(value, dict) and schema.get("properties") is not None:
        return {escape_property(k): v for k, v in value.items()}
    return value


@dataclass
class _Rule:
    source: str
    program: Any
    message: str
    message_program: Any | None
    field_path: str
    reason: str
    transition: bool
    memo: _Memo = field(default_factory=lambda: _Memo())
    immutable: bool = False
    """The rule is `self == oldSelf`."""


@dataclass
class _Node:
    schema: dict[str, Any]
    rules: list[_Rule]
    properties: dict[str, _Node]
    items: _Node | None
    additional: _Node | None


def _compile(rule: dict[str, Any]) -> _Rule:
    src = rule["rule"]
    program = _env.program(_env.compile(src), functions=K8S_FUNCTIONS)
    msg_expr = rule.get("messageExpression")
    return _Rule(
        source=src,
        program=program,
        message=rule.get("message") or f"failed rule: {src}",
        message_program=_env.program(_env.compile(msg_expr), functions=K8S_FUNCTIONS) if msg_expr else None,
        field_path=rule.get("fieldPath", ""),
        reason=rule.get("reason", "FieldValueInvalid"),
        transition=re.search(r"\boldSelf\b", src) is not None,
        memo=_Memo(src),
        immutable=re.sub(r"\s+", "", src) in ("self==oldSelf", "oldSelf==self"),
    )


def _build(schema: dict[str, Any]) -> _Node | None:
    rules = [_compile(r) for r in schema.get("x-kubernetes-validations", [])]
    props = {k: n for k, sub in schema.get("properties", {}).items() if (n := _build(sub))}
    items = _build(schema["items"]) if isinstance(schema.get("items"), dict) else None
    addl = schema.get("additionalProperties")
    additional = _build(addl) if isinstance(addl, dict) else None
    if not (rules or props or items or additional):
        return None
    return _Node(schema, rules, props, items, additional)


_MACRO = re.compile(r"\.\s*(all|exists|exists_one|map|filter)\s*\(")
"""A macro call: the rule iterates a list or map, one interpreted evaluation per element."""


def _rules(node: _Node | None) -> Iterator[_Rule]:
    if node is not None:
        yield from node.rules
        for sub in (*node.properties.values(), node.items, node.additional):
            yield from _rules(sub)


class _OutOfBudget(Exception):  # noqa: N818 - a signal inside the walk, never seen outside
    def __init__(self, where: str, type_: str) -> None:
        super().__init__(where)
        self.where, self.type = where, type_

    @classmethod
    def at(cls, path: list[Any], value: Any) -> _OutOfBudget:
        """The rule at `path` (over `value`) ran out of the write's budget."""
        return cls(field_path(path).lstrip("."), json_type(value))


class CelRules:
    """All CEL rules of one schema, as a tree that mirrors the schema's shape."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = _build(schema)
        self.iterates = any(_MACRO.search(rule.source) for rule in _rules(self.root))
        """A rule iterates (`all`, `exists`, `map`, ...): an evaluation may cost a fraction of a
        second (a VirtualMachinePool's two lists of 16: about 0.2 s), too long for the event loop."""

    @property
    def empty(self) -> bool:
        return self.root is None

    def evaluate(self, obj: dict[str, Any], old: dict[str, Any] | None, budget: Budget | None = None) -> list[Cause]:
        """The causes of the rules `obj` breaks; once the rules have spent `budget` (a write's,
        `cel_cost`), the cause that says so and no further rule."""
        if self.root is None:
            return []
        causes: list[Cause] = []
        try:
            self._walk(self.root, obj, old, [], causes, budget or Budget())
        except _OutOfBudget as out:
            causes.append(Cause(out.where, f'Invalid value: "{out.type}": {OUT_OF_BUDGET}'))
        return causes

    def _walk(self, node: _Node, value: Any, old: Any, path: list[Any], causes: list[Cause], budget: Budget) -> None:
        unchanged: bool | None = None
        for rule in node.rules:
            if rule.transition and old is None:
                continue
            if old is not None and (rule.immutable or not rule.transition):
                if unchanged is None:
                    unchanged = _same(value, old)
                if unchanged:
                    continue  # ratcheted, or `self == oldSelf` holding
            self._run(rule, node.schema, value, old, path, causes, budget)
        if isinstance(value, dict):
            for k, sub in node.properties.items():
                if k in value:
                    self._walk(sub, value[k], old.get(k) if isinstance(old, dict) else None, [*path, k], causes, budget)
            if node.additional is not None:
                for k, v in value.items():
                    if k not in node.properties:
                        self._walk(node.additional, v, old.get(k) if isinstance(old, dict) else None,
                                   [*path, k], causes, budget)
        elif isinstance(value, list) and node.items is not None:
            for i, v in enumerate(value):
                self._walk(node.items, v, None, [*path, i], causes, budget)

    def _run(self, rule: _Rule, schema: dict[str, Any], value: Any, old: Any, path: list[Any],
             causes: list[Cause], budget: Budget) -> None:
        cur_view = _escaped_view(schema, value)
        old_view = _escaped_view(schema, old) if rule.transition else None
        known = rule.memo.lookup(cur_view, old_view)
        if known is True:
            return
        activation: dict[str, Any] = {"self": _recording(to_cel(schema, value))}
        if rule.transition:
            activation["oldSelf"] = _recording(to_cel(schema, old))
        try:
            result = rule.program.evaluate(activation, budget)
        except BudgetExceeded:
            raise _OutOfBudget.at(path, value) from None
        except Exception as exc:  # celpy raises for type errors and missing keys
            result = exc
        passed = result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result))
        if known is None:
            recs = [a for a in activation.values() if isinstance(a, _Recording)]
            if not recs:
                rule.memo.store(None, cur_view, old_view, passed)
            elif not any(r.whole for r in recs):
                rule.memo.store(tuple(sorted(set().union(*(r.reads for r in recs)))), cur_view, old_view, passed)
        if passed:
            return
        message = rule.message
        if isinstance(result, (Exception, CELEvalError)):
            message = f"{rule.message} (rule could not be evaluated: {result})"
        elif rule.message_program is not None:
            try:
                message = str(rule.message_program.evaluate(activation, budget))
            except BudgetExceeded:
                raise _OutOfBudget.at(path, value) from None
            except Exception:  # noqa: BLE001 - the static message stays
                pass
        where = field_path(path)
        if rule.field_path:
            where = (where + rule.field_path) if rule.field_path.startswith("[") else f"{where}{rule.field_path}"
        causes.append(Cause(where.lstrip("."), f'Invalid value: "{json_type(value)}": {message}', rule.reason))
