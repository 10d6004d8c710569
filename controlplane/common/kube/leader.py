"""Leader election through a coordination.k8s.io Lease, so two servers never both act.

The candidate holding the Lease renews it every `lease_renew_every` seconds; others retry
every `lease_retry_every` and take it over only once it has not been renewed for
`lease_duration`. Writes go through resourceVersion-guarded updates, so two candidates
racing for an expired lease end with one holder. Losing the lease calls `on_lost`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from controlplane.common.kube.client import LEASES, KubeClient, KubeError
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings

log = logging.getLogger(__name__)


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(s: str | None) -> dt.datetime | None:
    if not s:
        return None
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


class LeaderElector:
    def __init__(self, kube: KubeClient, *, name: str, namespace: str, identity: str,
                 on_started: Callable[[], None], on_lost: Callable[[], None],
                 settings: RuntimeSettings = DEFAULT, annotations: dict[str, str] | None = None) -> None:
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.on_started = on_started
        self.on_lost = on_lost
        self.settings = settings
        self.annotations = annotations or {}
        """Written on the Lease by its holder (e.g. the holder's version, for `dvp version --cluster`)."""
        self.leading = threading.Event()
        self._stop = threading.Event()

    def try_acquire_or_renew(self) -> bool:
        now = dt.datetime.now(dt.UTC)
        lease = self.kube.get_or_none(LEASES, self.name, self.namespace)
        spec: dict[str, Any] = {"holderIdentity": self.identity,
                                "leaseDurationSeconds": int(self.settings.lease_duration), "renewTime": _ts(now)}
        if lease is None:
            spec.update(acquireTime=_ts(now), leaseTransitions=0)
            try:
                self.kube.create(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                          "metadata": {"name": self.name, "namespace": self.namespace,
                                                       "annotations": dict(self.annotations)},
                                          "spec": spec}, self.namespace)
                return True
            except KubeError as exc:
                if exc.already_exists:
                    return False
                raise
        cur = lease.get("spec") or {}
        holder = cur.get("holderIdentity")
        renewed = _parse(cur.get("renewTime"))
        duration = float(cur.get("leaseDurationSeconds") or self.settings.lease_duration)
        if holder and holder != self.identity and renewed and (now - renewed).total_seconds() < duration:
            return False
        if holder != self.identity:
            spec.update(acquireTime=_ts(now), leaseTransitions=int(cur.get("leaseTransitions") or 0) + 1)
        else:
            spec["acquireTime"] = cur.get("acquireTime") or _ts(now)
            spec["leaseTransitions"] = int(cur.get("leaseTransitions") or 0)
        lease["spec"] = spec
        if self.annotations:
            lease["metadata"]["annotations"] = {**(lease["metadata"].get("annotations") or {}), **self.annotations}
        try:
            self.kube.replace(LEASES, lease)
            return True
        except KubeError as exc:
            if exc.conflict:
                return False
            raise

    def run(self) -> None:
        """Blocks: campaign, lead, renew; returns after `stop()`."""
        while not self._stop.is_set():
            try:
                ok = self.try_acquire_or_renew()
            except Exception as exc:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                ok = False
            if ok and not self.leading.is_set():
                log.info("%s is now the leader (%s/%s)", self.identity, self.namespace, self.name)
                self.leading.set()
                self.on_started()
            elif not ok and self.leading.is_set():
                log.warning("%s lost the lease %s/%s", self.identity, self.namespace, self.name)
                self.leading.clear()
                self.on_lost()
            self._stop.wait(self.settings.lease_renew_every if ok else self.settings.lease_retry_every)

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.run, name=f"leader-{self.name}", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        """Give the Lease up at once (a graceful stop): the next candidate — e.g. the same server
        restarted by an upgrade — takes it without waiting `lease_duration` for it to expire."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            wait = self.settings.lease_release_timeout
            lease = self.kube.get_or_none(LEASES, self.name, self.namespace, timeout=wait)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"] = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1,
                             "renewTime": _ts(dt.datetime.now(dt.UTC))}
            self.kube.replace(LEASES, lease, timeout=wait)
            log.info("%s released the lease %s/%s", self.identity, self.namespace, self.name)
        except Exception as exc:  # the lease then simply expires
            log.warning("releasing lease %s/%s: %s", self.namespace, self.name, exc)
