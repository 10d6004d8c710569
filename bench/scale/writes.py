"""The API writes a `dvp server` took, by resource, from its own `apiserver_request_total`: what
each created VM costs the API server in writes (the API alone takes two, the VM and its disk;
the whole platform its addresses, leases, volume, instance, their status and Events too)."""

from __future__ import annotations

import re
from collections import Counter

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY"})
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def parse(text: str) -> Counter[str]:
    """Write requests per `resource[/subresource]` in a Prometheus text exposition."""
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line.rpartition(" ")
        labels = dict(_LABEL.findall(labels_text))
        if labels.get("verb") not in WRITE_VERBS:
            continue
        name = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
        out[name] += int(float(value))
    return out


def summary(per_vm: dict[str, float], top: int = 4) -> str:
    """`32.7 API writes/VM (events 7.3, virtualmachines/status 7.2, ...)`."""
    total = sum(per_vm.values())
    biggest = sorted(per_vm.items(), key=lambda kv: -kv[1])[:top]
    return f"{total:.1f} API writes/VM (" + ", ".join(f"{k} {v:.1f}" for k, v in biggest) + ")"
