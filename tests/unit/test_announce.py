"""A ready line goes out in one write(2), its newline included: with unbuffered stdout, `print`
wrote the text and the newline apart, another thread's log line landed between them, and a test
read the port of "...:39911<timestamp ...:14Z>" as 14."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from controlplane.common import announce as announce_mod
from controlplane.common.announce import announce


def test_the_line_and_its_newline_are_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = (tmp_path / "out.log").open("w", buffering=1)
    monkeypatch.setattr(sys, "stdout", out)
    out.write("before\n")  # still in the text buffer: it must come out first
    writes: list[tuple[int, bytes]] = []
    real_write = os.write

    def recording(fd: int, data: bytes) -> int:
        writes.append((fd, bytes(data)))
        return real_write(fd, data)

    monkeypatch.setattr(announce_mod.os, "write", recording)
    announce("dvp agent: node n1 ready; consoles on 127.0.0.1:39911")
    out.close()
    assert [data for _, data in writes] == [
        b"dvp agent: node n1 ready; consoles on 127.0.0.1:39911\n"]
    assert (tmp_path / "out.log").read_text() == "before\ndvp agent: node n1 ready; consoles on 127.0.0.1:39911\n"


def test_a_stdout_without_a_file_gets_the_line_too(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    announce("dvp dvcr: ready at https://127.0.0.1:5000")
    assert buf.getvalue() == "dvp dvcr: ready at https://127.0.0.1:5000\n"
