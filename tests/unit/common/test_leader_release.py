"""A graceful stop gives the lease up with requests of its own short timeout, so a busy API
server holds the stop up for seconds, not for the client's default 30 s per request."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controlplane.common.kube.leader import LeaderElector
from controlplane.common.kube.settings import DEFAULT


class _Kube:
    def __init__(self, holder: str) -> None:
        self.lease = {"metadata": {"name": "l", "namespace": "ns"},
                      "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}}
        self.timeouts: list[tuple[str, float]] = []
        self.replaced: dict[str, Any] | None = None

    def get_or_none(self, _res: Any, _name: str, _ns: str | None = None, *, timeout: float = 30) -> dict[str, Any]:
        self.timeouts.append(("get", timeout))
        return self.lease

    def replace(self, _res: Any, obj: dict[str, Any], *, timeout: float = 30) -> dict[str, Any]:
        self.timeouts.append(("replace", timeout))
        self.replaced = obj
        return obj


def _elector(kube: _Kube) -> LeaderElector:
    elector = LeaderElector(kube, name="l", namespace="ns", identity="me",  # type: ignore[arg-type]
                            on_started=lambda: None, on_lost=lambda: None,
                            settings=replace(DEFAULT, lease_release_timeout=2.5))
    elector.leading.set()
    return elector


def test_the_lease_is_given_up_with_the_release_timeout() -> None:
    kube = _Kube("me")
    _elector(kube).release()
    assert kube.timeouts == [("get", 2.5), ("replace", 2.5)]
    assert kube.replaced is not None
    assert kube.replaced["spec"]["holderIdentity"] == ""
    assert kube.replaced["spec"]["leaseDurationSeconds"] == 1


def test_a_lease_held_by_another_is_left_alone() -> None:
    kube = _Kube("someone-else")
    _elector(kube).release()
    assert kube.timeouts == [("get", 2.5)]
    assert kube.replaced is None
