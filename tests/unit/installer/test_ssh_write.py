"""Writing a large stdin (the upgrade's bundle) to an SSH command: handed to paramiko in small
pieces, whose `sendall` re-slices what is left after every packet (quadratic in the size), and
the command gets every byte in order."""

from __future__ import annotations

import time

from installer.ssh.client import WRITE_CHUNK, ChannelProcess


class FakeChannel:
    """Takes at most one packet per send, as paramiko's channel does, through its own sendall."""

    PACKET = 32768

    def __init__(self) -> None:
        self.got = bytearray()
        self.calls: list[int] = []

    def exec_command(self, command: str) -> None:
        self.command = command

    def sendall(self, s: bytes) -> None:  # paramiko's Channel.sendall, verbatim
        self.calls.append(len(s))
        while s:
            sent = min(len(s), self.PACKET)
            self.got += s[:sent]
            s = s[sent:]


def test_a_large_write_arrives_whole_in_small_pieces_and_quickly() -> None:
    data = bytes(range(256)) * (64 * 1024 * 1024 // 256 + 7)  # 64 MiB and a bit: not a multiple of the chunk
    chan = FakeChannel()
    proc = ChannelProcess(chan, "cat > /tmp/x")  # type: ignore[arg-type]
    t0 = time.monotonic()
    proc.write(data)
    took = time.monotonic() - t0
    assert bytes(chan.got) == data
    assert max(chan.calls) == WRITE_CHUNK and len(chan.calls) == -(-len(data) // WRITE_CHUNK)
    assert took < 5, f"{took:.1f} s for 64 MiB"  # the whole buffer to sendall at once: ~45 s here
