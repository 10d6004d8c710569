"""The chain lock: additions on different paths run at once, two on one path take turns, a
reshape (exclusive) waits for the additions under way, runs alone, is re-entrant, and is not
starved by additions arriving after it queued; and two disks frozen at once on real qcow2
files each end up on their own snapshot."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from controlplane.nodehandler import volume_chain
from controlplane.nodehandler.chain_lock import ChainLock

WAIT = 5.0


def _thread(target: object) -> threading.Thread:
    t = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    t.start()
    return t


def _holding(lock: ChainLock, path: str, order: list[str], label: str) -> tuple[threading.Thread, threading.Event]:
    """A thread inside an addition on `path` (returned once it is in) until the returned event is
    set; it records `label` as it leaves."""
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock.adding(Path(path)):
            inside.set()
            release.wait(WAIT)
            order.append(label)

    thread = _thread(hold)
    assert inside.wait(WAIT)
    return thread, release


def _entering(lock: ChainLock, path: str, order: list[str], label: str) -> threading.Thread:
    """A thread that records `label` once inside an addition on `path`."""
    def enter() -> None:
        with lock.adding(Path(path)):
            order.append(label)

    return _thread(enter)


def test_additions_on_different_paths_hold_it_at_once() -> None:
    lock, both_in = ChainLock(), threading.Barrier(2, timeout=WAIT)

    def add(name: str) -> None:
        with lock.adding(Path(f"/v/{name}")):
            both_in.wait()  # broken (BrokenBarrierError) unless both are inside together

    threads = [_thread(lambda n=n: add(n)) for n in ("a", "b")]
    for t in threads:
        t.join(WAIT)
    assert not both_in.broken and lock.idle()


def test_additions_on_one_path_take_turns() -> None:
    lock, order = ChainLock(), list[str]()
    t1, release = _holding(lock, "/v/disk", order, "first out")
    t2 = _entering(lock, "/v/./disk", order, "second in")
    time.sleep(0.1)
    assert order == []  # the second waits
    release.set()
    t1.join(WAIT)
    t2.join(WAIT)
    assert order == ["first out", "second in"]


def test_a_reshape_waits_for_additions_runs_alone_and_is_not_starved() -> None:
    lock, order = ChainLock(), list[str]()

    def reshape() -> None:
        with lock:
            with lock:  # re-entrant
                with lock.adding(Path("/v/c")):  # an addition inside it does not wait for itself
                    order.append("reshape")

    t1, release = _holding(lock, "/v/a", order, "a out")
    t2 = _thread(reshape)
    time.sleep(0.1)
    t3 = _entering(lock, "/v/b", order, "b in")  # arrives while the reshape is queued: goes after it
    time.sleep(0.1)
    assert order == []
    release.set()
    for t in (t1, t2, t3):
        t.join(WAIT)
    assert order == ["a out", "reshape", "b in"] and lock.idle()


def test_two_disks_frozen_at_once_each_get_their_own_snapshot(tmp_path: Path) -> None:
    disks = [tmp_path / "ns" / f"d{i}.qcow2" for i in range(2)]
    for d in disks:
        d.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(d), "8M"], check=True)
    errors: list[BaseException] = []

    def freeze(i: int) -> None:
        try:
            volume_chain.freeze(disks[i], disks[i].with_name(f"s{i}.qcow2"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [_thread(lambda i=i: freeze(i)) for i in range(2)]
    for t in threads:
        t.join(30)
    assert errors == []
    for i, d in enumerate(disks):
        assert volume_chain.backing(d) == d.with_name(f"s{i}.qcow2").absolute()
    assert volume_chain.LOCK.idle()
