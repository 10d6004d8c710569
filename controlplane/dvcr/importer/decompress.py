"""gzip and xz unpacked while streaming, with bounded output per step.

Each `feed` returns the unpacked bytes as pieces of at most `MAX_OUT`, so a small
compressed chunk that expands hugely never sits in memory whole. Concatenated members
(gzip) and streams (xz) are followed, trailing zero padding is accepted, and `finish`
refuses a stream cut off before its end.
"""

from __future__ import annotations

import lzma
import zlib
from typing import Any

from controlplane.dvcr.importer.formats import FormatError

MAX_OUT = 4 << 20


class Unpacker:
    def __init__(self, kind: str) -> None:
        if kind not in ("gzip", "xz"):
            raise ValueError(kind)
        self.kind = kind
        self._d: Any = self._new()
        self._between = False  # a member/stream just ended; what follows must be another or padding

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        try:
            self._feed(data, out)
        except (zlib.error, lzma.LZMAError) as exc:
            raise FormatError(f"the {self.kind} stream is corrupt: {exc}") from exc
        return out

    def _feed(self, data: bytes, out: list[bytes]) -> None:
        while data:
            if self._between:
                if not any(data):
                    return  # zero padding after the last member
                self._d = self._new()
                self._between = False
            if self.kind == "gzip":
                piece = self._d.decompress(data, MAX_OUT)
                if piece:
                    out.append(piece)
                while self._d.unconsumed_tail:
                    piece = self._d.decompress(self._d.unconsumed_tail, MAX_OUT)
                    if piece:
                        out.append(piece)
            else:
                piece = self._d.decompress(data, MAX_OUT)
                if piece:
                    out.append(piece)
                while not self._d.eof and not self._d.needs_input:
                    piece = self._d.decompress(b"", MAX_OUT)
                    if piece:
                        out.append(piece)
            if self._d.eof:
                data = self._d.unused_data
                self._between = True
            else:
                data = b""

    def finish(self) -> list[bytes]:
        if self._between:
            return []
        if self.kind == "gzip":
            tail = self._d.flush()
            if not self._d.eof:
                raise FormatError("the gzip stream is truncated (it ends before its last member)")
            return [tail] if tail else []
        raise FormatError("the xz stream is truncated (it ends before its end marker)")
