"""The test services' loopback ports: never from the kernel's ephemeral range (where any outgoing
connection may take one between its pick and its bind), never the same one twice."""

from __future__ import annotations

import socket

import pytest

from tests.services import apiserver
from tests.services.apiserver import _ephemeral_start, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(10_000 <= p < _ephemeral_start() for p in ports), ports
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))  # free when handed out


def test_a_port_held_by_someone_else_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    spare = free_port()  # free, and not from the range the kernel gives out by itself
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))  # someone else's: outside the pool the integration tests draw from
        taken = held.getsockname()[1]
        picks = iter([taken, taken, spare])
        monkeypatch.setattr(apiserver.random, "randrange", lambda lo, hi: next(picks))
        monkeypatch.setattr(apiserver, "_GIVEN", set())
        assert free_port() == spare


def test_slices_of_the_pool_do_not_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    slices = []
    for i in range(2):
        monkeypatch.setenv("DVP_TEST_PORT_SLICE", f"{i}/2")
        slices.append(apiserver.port_pool())
        monkeypatch.setattr(apiserver, "_GIVEN", set())
        lo, hi = slices[-1]
        assert all(lo <= free_port() < hi for _ in range(20)), slices
    (lo0, hi0), (lo1, hi1) = slices
    assert (lo0, hi1) == (10_000, _ephemeral_start()) and hi0 == lo1 and lo0 < hi0 < hi1, slices
    monkeypatch.setenv("DVP_TEST_PORT_SLICE", "2/2")
    with pytest.raises(ValueError, match="DVP_TEST_PORT_SLICE"):
        apiserver.port_pool()
