"""managedFields: who owns which fields of an object, kept up to date on every write.

Each entry is one manager's field set for one operation (`Apply`, or `Update` for create,
update and patch) and subresource, stored as kube stores it (`FieldsV1`, `time`,
`apiVersion`, `fieldsType`). An update takes the fields it added or changed from everyone
(kube's updates always force); an apply owns exactly what it applied, removes what it
applied before but no longer does (unless someone else owns it), and fails with a 409
naming each manager and field when it would change fields others own, unless forced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.apiserver import errors
from controlplane.apiserver.apply import fieldsets, merge
from controlplane.apiserver.apply.fieldsets import FieldSet, Path

APPLY = "Apply"
UPDATE = "Update"
MANAGER_MAX_LENGTH = 128
MAX_UPDATE_MANAGERS = 10  # kube-apiserver's cap; the oldest updaters fold into one entry
ANCIENT_CHANGES = "ancient-changes"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str = ""
    fields: FieldSet = field(default_factory=set)

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Appliers are one manager whatever version they apply; updaters one per version."""
        return (self.manager, self.operation, self.subresource, "" if self.operation == APPLY else self.api_version)

    def describe(self) -> str:
        """As kube-apiserver names a manager in a conflict."""
        out = orjson.dumps(self.manager).decode()
        if self.subresource:
            out += f" with subresource {orjson.dumps(self.subresource).decode()}"
        if self.operation == UPDATE:
            out += f" using {self.api_version}"
        return out


def decode(raw: Any) -> list[Entry] | None:
    """The entries of `metadata.managedFields`; None when the client asked to clear them
    (`[{}]`); a 400 naming the problem when they are malformed."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.bad_request("metadata.managedFields must be a list")
    if raw == [{}]:
        return None
    out: list[Entry] = []
    for i, item in enumerate(raw):
        where = f"metadata.managedFields[{i}]"
        if not isinstance(item, dict):
            raise errors.bad_request(f"{where} must be an object")
        if item.get("operation") not in (APPLY, UPDATE):
            raise errors.bad_request(f'{where}.operation: Unsupported value: {orjson.dumps(item.get("operation")).decode()}'
                                     ': supported values: "Apply", "Update"')
        if item.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise errors.bad_request(f'{where}.fieldsType: Unsupported value: "{item.get("fieldsType")}": '
                                     'supported values: "FieldsV1"')
        try:
            raw_fields = item.get("fieldsV1")
            fields = fieldsets.from_fields_v1({} if raw_fields is None else raw_fields)
        except ValueError as exc:
            raise errors.bad_request(f"{where}.fieldsV1: {exc}") from exc
        out.append(Entry(str(item.get("manager") or ""), item["operation"], str(item.get("apiVersion") or ""),
                         str(item.get("subresource") or ""), str(item.get("time") or ""), fields))
    return out


def _sort_key(e: Entry) -> tuple[str, str, str, str, str]:
    return (e.operation, e.time, e.manager, e.api_version, e.subresource)


def encode(entries: list[Entry]) -> list[dict[str, Any]]:
    out = []
    for e in sorted(entries, key=_sort_key):
        item: dict[str, Any] = {"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version}
        if e.time:
            item["time"] = e.time
        item["fieldsType"] = "FieldsV1"
        item["fieldsV1"] = fieldsets.to_fields_v1(e.fields)
        if e.subresource:
            item["subresource"] = e.subresource
        out.append(item)
    return out


def _mine(entries: list[Entry], want: Entry) -> Entry:
    for e in entries:
        if e.identity == want.identity:
            return e
    entries.append(want)
    return want


def record_update(entries: list[Entry], old: Any, new: Any, shape: dict[str, Any], *, manager: str,
                  api_version: str, subresource: str, ignored: tuple[Path, ...]) -> list[Entry]:
    """Entries after an update (create, update, non-apply patch) by `manager`."""
    added, modified, removed = fieldsets.compare(old, new, shape)
    changed = fieldsets.strip(added | modified, ignored)
    removed = fieldsets.strip(removed, ignored)
    mine = _mine(entries, Entry(manager, UPDATE, api_version, subresource))
    for e in entries:
        if e is not mine:
            e.fields -= changed | removed
    mine.fields = (mine.fields - removed) | changed
    if changed or removed or not mine.time:  # the manager changed the object: its entry says when
        mine.time = now()
    return _cap([e for e in entries if e.fields])


def _cap(entries: list[Entry]) -> list[Entry]:
    """At most MAX_UPDATE_MANAGERS Update entries: the oldest are merged into `ancient-changes`."""
    updaters = sorted((e for e in entries if e.operation == UPDATE and e.manager != ANCIENT_CHANGES),
                      key=lambda e: e.time)
    ancient = [e for e in entries if e.operation == UPDATE and e.manager == ANCIENT_CHANGES]
    excess = len(updaters) + len(ancient) - MAX_UPDATE_MANAGERS
    if excess <= 0:
        return entries
    folded = updaters[:excess + (0 if ancient else 1)]
    target = ancient[0] if ancient else Entry(ANCIENT_CHANGES, UPDATE, folded[-1].api_version)
    for e in folded:
        target.fields |= e.fields
        target.time = max(target.time, e.time)
    gone = {id(e) for e in folded}
    return [e for e in entries if id(e) not in gone and e is not target] + [target]


def apply(entries: list[Entry], live: dict[str, Any], config: dict[str, Any], shape: dict[str, Any], *,
          manager: str, api_version: str, subresource: str, force: bool,
          ignored: tuple[Path, ...]) -> tuple[dict[str, Any], list[Entry]]:
    """(object, entries) after `manager` applied `config` to `live`; 409 on conflicts."""
    merged: dict[str, Any] = merge.merge(live, config, shape)
    applied = fieldsets.strip(fieldsets.to_set(config, shape), ignored)
    mine = _mine(entries, Entry(manager, APPLY, api_version, subresource))
    others = [e for e in entries if e is not mine]
    still_owned = set(applied).union(*(e.fields for e in others))
    merge.remove(merged, mine.fields - still_owned, shape, still_owned=still_owned)
    added, modified, removed = fieldsets.compare(live, merged, shape)
    changed = fieldsets.strip(added | modified, ignored)
    removed = fieldsets.strip(removed, ignored)
    conflicts = [(e, sorted(e.fields & changed)) for e in others if e.fields & changed]
    if conflicts and not force:
        raise conflict_error(conflicts)
    for e in others:
        e.fields -= changed | removed
    mine.fields = applied
    mine.api_version = api_version
    mine.time = now()
    return merged, [e for e in entries if e.fields or e is mine]


def conflict_error(conflicts: list[tuple[Entry, list[Path]]]) -> errors.ApiError:
    """409 Conflict worded and detailed as kube-apiserver's apply conflicts."""
    flat = [(e, p) for e, paths in conflicts for p in paths]
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}",
               "field": fieldsets.path_string(p)} for e, p in flat]
    if len(flat) == 1:
        e, p = flat[0]
        message = f"Apply failed with 1 conflict: conflict with {e.describe()}: {fieldsets.path_string(p)}"
    else:
        lines = []
        for e, paths in sorted(conflicts, key=lambda c: c[0].describe()):
            lines.append(f"conflicts with {e.describe()}:")
            lines.extend(f"- {fieldsets.path_string(p)}" for p in paths)
        message = f"Apply failed with {len(flat)} conflicts: " + "\n".join(lines)
    return errors.ApiError(409, "Conflict", message, {"causes": causes})


def validate_manager(manager: str, *, required: bool) -> list[errors.Cause]:
    """kube's PatchOptions/CreateOptions checks of `fieldManager`."""
    causes = []
    if required and not manager:
        causes.append(errors.Cause("fieldManager", "Required value: is required for apply patch",
                                   "FieldValueRequired"))
    if len(manager) > MANAGER_MAX_LENGTH:
        causes.append(errors.Cause("fieldManager", f"Too long: may not be more than {MANAGER_MAX_LENGTH} bytes",
                                   "FieldValueTooLong"))
    for i, ch in enumerate(manager):
        if not ch.isprintable():
            causes.append(errors.Cause("fieldManager", f"Invalid value: {orjson.dumps(manager).decode()}: "
                                       f"invalid characters at index {i}"))
            break
    return causes


def manager_from_user_agent(user_agent: str) -> str:
    """kube's default manager when a writer gives none: the user agent up to its first `/`."""
    prefix = user_agent.split("/", 1)[0][:MANAGER_MAX_LENGTH]
    return "".join(ch if ch.isprintable() else "?" for ch in prefix)
