"""What the node lifecycle controller knows of each node's heartbeats: when this process last
saw the node's Lease renewed (its own monotonic clock, so a node's clock can neither hide a
lost node nor fake a live one), and how far the node's clock is from the control plane's
(`renewTime`, stamped by the node, against the wall clock here when the renewal arrived).

A node first seen (controller start, new node) counts as renewed at that moment: it gets a
full grace period before it can be declared lost, as kube-controller-manager gives it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Heartbeat:
    renew_time: str
    """`spec.renewTime` as the node wrote it ("" when it has no Lease yet)."""
    seen_at: float
    """This process's monotonic clock when that renewal (or the node) was first seen."""
    skew: float | None
    """Node clock minus ours, in seconds, measured on a renewal seen as it happened (None: unknown)."""


def parse_time(text: str) -> dt.datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


class Heartbeats:
    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.monotonic = monotonic
        self.wall = wall
        self._lock = threading.Lock()
        self._by_node: dict[str, Heartbeat] = {}

    def renewed(self, node: str, lease: dict[str, Any], *, live: bool) -> None:
        """A Lease event: a new renewTime restarts the node's grace; `live` events measure skew."""
        renew = str((lease.get("spec") or {}).get("renewTime") or "")
        with self._lock:
            old = self._by_node.get(node)
            if old is not None and old.renew_time == renew:
                return
            skew = old.skew if old is not None else None
            stamp = parse_time(renew)
            if live and stamp is not None:
                skew = (stamp - self.wall()).total_seconds()
            self._by_node[node] = Heartbeat(renew_time=renew, seen_at=self.monotonic(), skew=skew)

    def get(self, node: str, lease: dict[str, Any] | None) -> Heartbeat:
        """The node's last heartbeat; a node never seen starts its grace now."""
        with self._lock:
            hb = self._by_node.get(node)
            if hb is None:
                renew = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
                hb = self._by_node[node] = Heartbeat(renew_time=renew, seen_at=self.monotonic(), skew=None)
            return hb

    def age(self, hb: Heartbeat) -> float:
        return self.monotonic() - hb.seen_at

    def forget(self, node: str) -> None:
        with self._lock:
            self._by_node.pop(node, None)
