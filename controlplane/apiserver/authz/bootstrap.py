"""Writing the default ClusterRoles and ClusterRoleBindings (`defaults.py`) at server start,
and wiring authorization into a running server (`install`).

A default that is missing is created; one whose autoupdate annotation is still `"true"` is
put back as shipped when it differs; one an administrator marked `"false"` is left alone.
Aggregated ClusterRoles (`admin`, `edit`, `view`) are stored with the rules they aggregate,
as kube's aggregation controller writes them, so `kubectl describe clusterrole edit` shows
them — and `AggregationWriter` keeps them so when ClusterRoles change later; the authorizer
aggregates by itself whatever is stored, so decisions never wait for that write.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path
from typing import Any

from controlplane.apiserver import errors
from controlplane.apiserver.authz import audit_policy, defaults
from controlplane.apiserver.authz.audit import AuditLog
from controlplane.apiserver.authz.authorizer import Authorizer
from controlplane.apiserver.authz.escalation import EscalationCheck
from controlplane.apiserver.authz.kinds import CLUSTER_BINDINGS, CLUSTER_ROLES, GROUP, VERSION
from controlplane.apiserver.authz.middleware import AuthorizationMiddleware
from controlplane.apiserver.authz.rbac import aggregate
from controlplane.apiserver.datastore import Event
from controlplane.apiserver.service import ApiService

log = logging.getLogger(__name__)


def _differs(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    keys = ("rules", "aggregationRule", "roleRef", "subjects")
    if any(current.get(k) != desired.get(k) for k in keys):
        return True
    meta, want = current.get("metadata") or {}, desired["metadata"]
    return any((meta.get(k) or {}) != {**(meta.get(k) or {}), **want[k]} for k in ("labels", "annotations"))


async def _ensure(service: ApiService, plural: str, desired: dict[str, Any]) -> None:
    info = service.registry.get(GROUP, VERSION, plural)
    assert info is not None
    name = desired["metadata"]["name"]
    try:
        current = service.get(info, "", name).obj
    except errors.ApiError:
        await service.create(info, "", copy.deepcopy(desired))
        return
    meta = current.get("metadata") or {}
    if (meta.get("annotations") or {}).get(defaults.AUTOUPDATE) != "true" or not _differs(current, desired):
        return
    updated = {**copy.deepcopy(desired), "metadata": {
        **meta, "labels": {**(meta.get("labels") or {}), **desired["metadata"]["labels"]},
        "annotations": {**(meta.get("annotations") or {}), **desired["metadata"]["annotations"]}}}
    await service.update(info, "", name, updated)


async def ensure_defaults(service: ApiService) -> None:
    roles = defaults.cluster_roles()
    aggregated = aggregate({r["metadata"]["name"]: r for r in roles})
    for role in roles:
        if role.get("aggregationRule"):
            role["rules"] = [r.to_dict() for r in aggregated[role["metadata"]["name"]]]
        await _ensure(service, CLUSTER_ROLES, role)
    for binding in defaults.cluster_role_bindings():
        await _ensure(service, CLUSTER_BINDINGS, binding)


class AggregationWriter:
    """kube's clusterrole-aggregation controller: after any ClusterRole changes, every
    ClusterRole with an aggregationRule is rewritten with the rules its selectors gather (only
    when they differ, so its own writes end the loop)."""

    def __init__(self, service: ApiService) -> None:
        self.service = service
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def on_events(self, events: list[Event]) -> None:
        if not any(e.resource == f"{GROUP}/{CLUSTER_ROLES}" for e in events):
            return
        if self._task is not None and not self._task.done():
            self._again = True  # one more pass once the running one ends
            return
        try:
            self._task = asyncio.get_running_loop().create_task(self._passes())
        except RuntimeError:
            return

    async def _passes(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            await self.run()

    async def run(self) -> None:
        info = self.service.registry.get(GROUP, VERSION, CLUSTER_ROLES)
        assert info is not None
        stored = {key.split("/", 1)[1]: s for key, s in self.service.store.items(info.storage_resource)}
        gathered = aggregate({name: s.obj for name, s in stored.items()})
        for name, current in stored.items():
            if not (current.obj.get("aggregationRule") or {}).get("clusterRoleSelectors"):
                continue
            rules = [r.to_dict() for r in gathered.get(name, ())]
            if current.obj.get("rules") == rules:
                continue
            updated = {**current.copy(), "rules": rules}
            updated["metadata"] = {**updated["metadata"], "resourceVersion": str(current.rv)}
            try:
                await self.service.update(info, "", name, updated)
            except errors.ApiError as exc:  # a concurrent change: its own event brings another pass
                log.info("aggregated ClusterRole %s not rewritten: %s", name, exc.message)


def install(service: ApiService, data_dir: Path, *, audit: bool = True,
            policy_file: Path | None = None) -> tuple[Authorizer, AuthorizationMiddleware]:
    """The server's authorizer over its datastore, escalation checks on its writes, and the
    middleware (with the audit log in `data_dir`, its levels from `policy_file`) to put after
    authentication."""
    authorizer = Authorizer.over(service.store)
    service.write_checks.append(EscalationCheck(authorizer))
    service.store.subscribe(AggregationWriter(service).on_events)
    log = AuditLog(data_dir / "audit.log") if audit else None
    policy = audit_policy.load(policy_file) if policy_file is not None else audit_policy.METADATA_ONLY
    return authorizer, AuthorizationMiddleware(authorizer, log, policy=policy)
