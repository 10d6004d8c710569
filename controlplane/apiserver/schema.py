"""Structural OpenAPI v3 schemas: pruning, defaulting, validation, CEL rules.

Applied to every write of a custom resource (and of the built-in kinds, which carry
schemas too), in the order kube-apiserver uses: prune unknown fields and nulls, apply
defaults, validate against the schema (the `jsonschema` library does the keyword checks,
behind a compiled yes/no first: `_Checker`; both run `pattern` on RE2, `regex`), then evaluate
`x-kubernetes-validations` CEL rules (`cel_rules`) unless a schema error blocks them. Errors
come back as `Cause`s with Kubernetes field paths (`spec.disks[0].name`) and messages shaped
like the real server's, so a 422 from here reads like one from a real cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import fastjsonschema
import jsonschema
import orjson

from controlplane.apiserver import regex
from controlplane.apiserver.cel_rules import CelRules
from controlplane.apiserver.errors import Cause
from controlplane.apiserver.fieldpath import field_path, json_type, render_value

META_FIELDS = {
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
}
BLOCKING = frozenset({"FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany",
                      "FieldValueTypeInvalid"})
"""Reasons of schema causes that keep an object's CEL rules from running (kube-apiserver's
`hasBlockingErr`)."""
RULES_NOT_CHECKED = ("some validation rules were not checked because the object was invalid; correct the existing "
                     "errors to complete validation")
_K8S_KEYWORDS = ("x-kubernetes-", "default", "nullable", "format", "description", "example",
                 "externalDocs", "title")


def to_json_schema(s: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 structural schema as a JSON Schema (draft 4) for the `jsonschema` library."""
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k.startswith(_K8S_KEYWORDS):
            continue
        if k == "properties":
            out[k] = {name: to_json_schema(sub) for name, sub in v.items()}
        elif k in ("items", "not") and isinstance(v, dict) or k == "additionalProperties" and isinstance(v, dict):
            out[k] = to_json_schema(v)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [to_json_schema(sub) for sub in v]
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **out}
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="schema-compile")
_DRAFT4 = "http://json-schema.org/draft-04/schema#"


_COMPILED: dict[bytes, Callable[[Any], Any]] = {}
"""Compiled checks by schema (its canonical JSON): versions, kinds and subtrees that share a
schema share its compiled code. Written by the compiler thread only."""


def _dollars_in_sets_escaped(pattern: str) -> str:
    """`pattern` with each `$` inside a `[...]` set written `\\$` (the same set to Python's re):
    the compiler turns every unescaped `$` into `\\Z`, which a set does not take (DVP's URL
    pattern has `[$-_@.&+]`)."""
    out, in_set, escaped = [], False, False
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[" and not in_set:
            in_set = True
        elif ch == "]" and in_set and pattern[i - 1] != "[":
            in_set = False
        elif ch == "$" and in_set:
            out.append("\\")
        out.append(ch)
    return "".join(out)


def _for_compiler(s: Any) -> Any:
    if isinstance(s, dict):
        return {k: _dollars_in_sets_escaped(v) if k == "pattern" and isinstance(v, str) else
                v if k in ("enum", "const") else _for_compiler(v) for k, v in s.items()}
    if isinstance(s, list):
        return [_for_compiler(v) for v in s]
    return s


def _compile(schema: dict[str, Any]) -> Callable[[Any], Any]:
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    check = _COMPILED.get(key)
    if check is None:
        check = fastjsonschema.compile({**_for_compiler(schema), "$schema": _DRAFT4},
                                       use_default=False, use_formats=False)
        # the generated code looks its patterns up in this table, compiled by Python's re: RE2 instead
        table: dict[str, Any] = check.__globals__.get("REGEX_PATTERNS", {})
        for pattern in table:
            table[pattern] = regex.compiled(pattern)
        _COMPILED[key] = check
    return check


def _matches(pattern: str, text: str) -> bool:
    """RE2's verdict; a pattern it does not take (a CRD stored before patterns were checked at its
    write) matches nothing, so the value is refused naming the field, never a 500."""
    try:
        return regex.search(pattern, text)
    except regex.PatternError:
        return False


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
             ) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
                        ) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "object"):
        for pattern, sub in patterns.items():
            for key, value in instance.items():
                if _matches(pattern, key):
                    yield from validator.descend(value, sub, path=key, schema_path=pattern)


_Draft4 = jsonschema.validators.extend(jsonschema.Draft4Validator,
                                       {"pattern": _pattern, "patternProperties": _pattern_properties})
"""Draft 4 with the pattern keywords on RE2 (`regex`)."""


class _Checker:
    """The keyword checks of one (sub)schema. jsonschema finds the errors, with the paths and
    values the messages need, but takes about 180 µs to pass a VirtualMachine that has none;
    the same schema compiled to Python code (fastjsonschema, draft 4) answers valid or not in
    about 17 µs. So the compiled check runs first and jsonschema only for a value it refuses
    (its verdict is the one that counts: a value jsonschema passes is still accepted).

    Compiling takes 10-80 ms per schema: it runs on a background thread when the schema is
    first used, and until it is done jsonschema alone checks, so no request waits for it. A
    schema the compiler cannot take stays with jsonschema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._errors = _Draft4(schema)
        self._fast: Future[Callable[[Any], Any]] | None = None

    def compiled(self) -> Future[Callable[[Any], Any]]:
        if self._fast is None:
            self._fast = _COMPILER.submit(_compile, self.schema)
        return self._fast

    def iter_errors(self, value: Any) -> Iterator[jsonschema.ValidationError]:
        fast = self.compiled()
        if fast.done() and fast.exception() is None:
            try:
                fast.result()(value)
                return iter(())
            except Exception:  # noqa: BLE001 - refused, or the compiled code failed: jsonschema decides
                pass
        errors: Iterator[jsonschema.ValidationError] = self._errors.iter_errors(value)
        return errors


class StructuralSchema:
    """One compiled openAPIV3Schema of one served version of a kind."""

    def __init__(self, schema: dict[str, Any], *, kind: str) -> None:
        self.schema = schema
        self.kind = kind
        self._json_schema = to_json_schema(self._without_metadata(schema))
        self._validator = _Checker(self._json_schema)
        self._validators: dict[int, _Checker] = {id(self._json_schema): self._validator}
        """Compiled validators of the subtrees an update checks alone, by id of their (kept) schema."""
        self.cel = CelRules(schema)

    @staticmethod
    def _without_metadata(schema: dict[str, Any]) -> dict[str, Any]:
        s = dict(schema)
        props = dict(s.get("properties", {}))
        props.pop("metadata", None)  # ObjectMeta is validated by metadata.py, not by the CRD schema
        if props or "properties" in s:
            s["properties"] = props
        return s

    # -- pruning and defaulting -----------------------------------------------------------
    def prune(self, obj: dict[str, Any]) -> None:
        """Drop fields the schema doesn't know (and nulls where it doesn't allow them)."""
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            for k in [k for k in meta if k not in META_FIELDS]:
                del meta[k]
        for k in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
            sub = self.schema.get("properties", {}).get(k)
            if sub is None and not self.schema.get("x-kubernetes-preserve-unknown-fields"):
                del obj[k]
            elif sub is not None:
                if obj[k] is None and not sub.get("nullable"):
                    del obj[k]
                else:
                    _prune(obj[k], sub)

    def apply_defaults(self, obj: dict[str, Any]) -> None:
        for k, sub in self.schema.get("properties", {}).items():
            if k in ("metadata", "apiVersion", "kind"):
                continue
            if k not in obj and "default" in sub:
                obj[k] = copy.deepcopy(sub["default"])
            if k in obj:
                _default(obj[k], sub)

    # -- validation -------------------------------------------------------------------------
    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
        """The schema's causes, then its CEL rules' unless a cause is one of `BLOCKING`: as
        kube-apiserver, rules run only on an object within the schema's types, enums, required
        fields and limits. The limits are what bound a rule's cost (a rule over two lists is
        their product: two lists of 400 held a core for two minutes, where `maxItems: 16` let
        them through to the rule)."""
        causes = [self._cause(e) for e in self._keyword_errors(obj, old)]
        causes.extend(_list_uniqueness(obj, self.schema, []))
        if self.cel.empty:
            return causes
        if any(c.reason in BLOCKING for c in causes):
            causes.append(Cause("<nil>", f'Invalid value: "null": {RULES_NOT_CHECKED}'))  # kube's, fieldless
        else:
            causes.extend(self.cel.evaluate(obj, old))
        return causes

    # keywords of an object (array) schema under which each property (item) can be checked on its own
    _PER_FIELD_OBJECT = frozenset({"type", "properties", "required", "description"})
    _PER_ITEM_ARRAY = frozenset({"type", "items", "description"})

    def _keyword_errors(self, obj: dict[str, Any], old: dict[str, Any] | None
                        ) -> Iterator[jsonschema.ValidationError]:
        """The schema's keyword errors. On an update, a field equal to the stored one (so
        validated when it was stored) is not checked again, at any depth where the schema
        constrains each field on its own (an object's properties, an array's items): a status
        write checks the status fields that changed, not the spec nor the unchanged conditions
        (as kube-apiserver's validation ratcheting lets unchanged fields be). Anything this
        shortcut cannot decide (a schema keyword relating fields, a new subtree) goes through
        the schema of that subtree, whose compiled validator is kept."""
        if old is None:
            yield from self._validator.iter_errors(obj)
            return
        yield from self._ratcheted(self._json_schema, obj, old, ())

    def _ratcheted(self, schema: dict[str, Any], value: Any, old: Any, path: tuple[str | int, ...]
                   ) -> Iterator[jsonschema.ValidationError]:
        props, items, type_ = schema.get("properties"), schema.get("items"), schema.get("type")
        if isinstance(value, dict) and isinstance(old, dict) and isinstance(props, dict) \
                and type_ in ("object", None) and self._PER_FIELD_OBJECT.issuperset(schema) \
                and all(r in value for r in schema.get("required", ())):
            for key, sub_value in value.items():
                sub = props.get(key)
                if sub is None or (key in old and old[key] == sub_value):
                    continue
                yield from self._ratcheted(sub, sub_value, old.get(key), (*path, key))
            return
        if isinstance(value, list) and isinstance(old, list) and isinstance(items, dict) \
                and type_ == "array" and self._PER_ITEM_ARRAY.issuperset(schema):
            for i, item in enumerate(value):
                if item not in old:
                    yield from self._ratcheted(items, item, None, (*path, i))
            return
        validator = self._validators.get(id(schema))
        if validator is None:
            validator = self._validators[id(schema)] = _Checker(schema)
        for error in validator.iter_errors(value):
            error.path.extendleft(reversed(path))  # `relative_path` is the same deque
            yield error

    def _cause(self, e: jsonschema.ValidationError) -> Cause:
        path = list(e.absolute_path)
        fp = field_path(path)
        v = e.instance
        rule = e.validator
        if rule == "required":
            missing = [p for p in e.validator_value if isinstance(v, dict) and p not in v]
            return Cause(field_path([*path, missing[0] if missing else "?"]), "Required value",
                         "FieldValueRequired")
        if rule == "enum":
            allowed = ", ".join(render_value(x) for x in e.validator_value)
            return Cause(fp, f"Unsupported value: {render_value(v)}: supported values: {allowed}",
                         "FieldValueNotSupported")
        if rule == "type":
            want = e.validator_value if isinstance(e.validator_value, str) else e.validator_value[0]
            return Cause(fp, f'Invalid value: {render_value(v)}: {fp} in body must be of type {want}: "{json_type(v)}"',
                         "FieldValueTypeInvalid")
        if rule in ("maxLength",):
            return Cause(fp, f"Too long: may not be longer than {e.validator_value}", "FieldValueTooLong")
        if rule in ("maxItems", "maxProperties"):
            return Cause(fp, f"Too many: {len(v)}: must have at most {e.validator_value} items", "FieldValueTooMany")
        words: dict[str, Callable[[], str]] = {
            "minimum": lambda: ("be greater than" if e.schema.get("exclusiveMinimum") else "be greater than or equal to")
            + f" {e.validator_value}",
            "maximum": lambda: ("be less than" if e.schema.get("exclusiveMaximum") else "be less than or equal to")
            + f" {e.validator_value}",
            "pattern": lambda: f"match '{e.validator_value}'",
            "minLength": lambda: f"be at least {e.validator_value} chars long",
            "minItems": lambda: f"have at least {e.validator_value} items",
            "multipleOf": lambda: f"be a multiple of {e.validator_value}",
            "minProperties": lambda: f"have at least {e.validator_value} properties",
            "oneOf": lambda: "match exactly one schema in oneOf",
            "anyOf": lambda: "match at least one schema in anyOf",
            "not": lambda: "not match the schema in not",
            "uniqueItems": lambda: "have unique items",
        }
        shown = len(v) if rule in ("minItems",) else v
        what = words.get(str(rule), lambda: f"satisfy {rule}")()
        return Cause(fp, f"Invalid value: {render_value(shown)}: {fp or self.kind} in body should {what}")


def _prune(v: Any, s: dict[str, Any]) -> None:
    if isinstance(v, dict):
        keep = {"apiVersion", "kind", "metadata"} if s.get("x-kubernetes-embedded-resource") else set()
        props = s.get("properties")
        addl = s.get("additionalProperties")
        if props is not None:
            for k in list(v):
                sub = props.get(k)
                if sub is None:
                    if k not in keep and not s.get("x-kubernetes-preserve-unknown-fields") and not isinstance(addl, dict):
                        del v[k]
                    elif isinstance(addl, dict):
                        _prune(v[k], addl)
                elif v[k] is None and not sub.get("nullable"):
                    del v[k]
                else:
                    _prune(v[k], sub)
        elif isinstance(addl, dict):
            for k in list(v):
                if v[k] is None and not addl.get("nullable"):
                    del v[k]
                else:
                    _prune(v[k], addl)
        elif not s.get("x-kubernetes-preserve-unknown-fields") and s.get("type") == "object" and not addl:
            for k in [k for k in v if k not in keep]:
                del v[k]
    elif isinstance(v, list) and isinstance(s.get("items"), dict):
        for item in v:
            _prune(item, s["items"])


def _default(v: Any, s: dict[str, Any]) -> None:
    if isinstance(v, dict):
        for k, sub in s.get("properties", {}).items():
            if k not in v and "default" in sub:
                v[k] = copy.deepcopy(sub["default"])
            if k in v:
                _default(v[k], sub)
        addl = s.get("additionalProperties")
        if isinstance(addl, dict):
            for k in v:
                if k not in s.get("properties", {}):
                    _default(v[k], addl)
    elif isinstance(v, list) and isinstance(s.get("items"), dict):
        for item in v:
            _default(item, s["items"])


def _list_uniqueness(v: Any, s: dict[str, Any], path: list[Any]) -> Iterator[Cause]:
    """`x-kubernetes-list-type: set|map` forbid duplicates (items, or map keys)."""
    if isinstance(v, dict):
        props = s.get("properties", {})
        for k, sub in props.items():
            if k in v:
                yield from _list_uniqueness(v[k], sub, [*path, k])
    elif isinstance(v, list):
        lt = s.get("x-kubernetes-list-type")
        if lt in ("set", "map"):
            keys = s.get("x-kubernetes-list-map-keys", [])
            seen: set[str] = set()
            for i, item in enumerate(v):
                ident = repr([item.get(k) for k in keys]) if lt == "map" and isinstance(item, dict) else repr(item)
                if ident in seen:
                    yield Cause(field_path([*path, i]), f"Duplicate value: {render_value(item)}", "FieldValueDuplicate")
                seen.add(ident)
        items = s.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(v):
                yield from _list_uniqueness(item, items, [*path, i])
