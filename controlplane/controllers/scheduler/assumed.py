"""Assumed placements: what the scheduler decided but the informer cache does not show yet.

A placement reaches the cache only after the VM's status (`status.nodeName`) is written and
its watch event comes back; two workers placing two VMs in that window would both see the
node's old load and could over-commit it (kube-scheduler's "assume" closes the same gap).
So a decision and its recording happen under one lock, and the scheduler counts assumed
placements as load until the cache shows the VM placed (or gone), or the entry expires — a
status write that failed leaves an entry that the VM's next cycle reuses (the VM keeps the node
it was given) or that lapses after `ttl`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str]


@dataclass(frozen=True)
class Assumption:
    node: str
    cpu: float
    memory: int
    vm: dict[str, Any]
    """The VM as it was placed (metadata and spec: labels and affinity matter to later placements)."""
    expires: float


class AssumedPlacements:
    def __init__(self, *, ttl: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self.lock = threading.RLock()
        """Held from reading the load to recording the decision (`deciding`)."""
        self._by_key: dict[Key, Assumption] = {}

    @contextmanager
    def deciding(self) -> Iterator[AssumedPlacements]:
        with self.lock:
            yield self

    def assume(self, key: Key, *, node: str, cpu: float, memory: int, vm: dict[str, Any]) -> None:
        with self.lock:
            self._by_key[key] = Assumption(node=node, cpu=cpu, memory=memory, vm=vm, expires=self.clock() + self.ttl)

    def forget(self, key: Key) -> None:
        with self.lock:
            self._by_key.pop(key, None)

    def node_of(self, key: Key) -> str | None:
        with self.lock:
            a = self._by_key.get(key)
            return a.node if a is not None and a.expires > self.clock() else None

    def prune(self, settled: Callable[[Key, Assumption], bool]) -> None:
        """Drop expired entries and those `settled` says the cache now shows (or that are gone)."""
        with self.lock:
            now = self.clock()
            for key, a in list(self._by_key.items()):
                if a.expires <= now or settled(key, a):
                    del self._by_key[key]

    def on_node(self, node: str) -> dict[Key, Assumption]:
        with self.lock:
            now = self.clock()
            return {k: a for k, a in self._by_key.items() if a.node == node and a.expires > now}

    def __len__(self) -> int:
        with self.lock:
            return len(self._by_key)
