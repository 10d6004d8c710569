"""A plain-HTTP transport over a Unix socket, for a component on the API server's own host.

`dvp server` runs the controllers next to the API server; sending their many small requests
through TLS cost both processes CPU for nothing (the bytes never leave the host). The API
server also listens on DATA_DIR/apiserver.sock (mode 0600, the same bearer-token
authentication), and `KubeClient` sends every request there when given `local_socket`.

The HTTP/1.1 spoken here is the small part the API server answers with: a request with a
Content-Length, an answer framed by Content-Length, chunked, or the connection's end. It is
written out rather than taken from `http.client`, whose header parsing (the email package)
was a tenth of the controllers' CPU on a busy server.

Each thread keeps one persistent connection; a watch gets a connection of its own for as
long as it streams. A connection the server closed while idle is opened again and the
request retried once (the request never reached the server), as urllib3 does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

MAX_LINE = 65536
"""The longest status or header line accepted, as http.client's limit."""


class Disconnected(ConnectionError):
    """The server closed the connection before its answer began."""


RETRYABLE = (Disconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class ProtocolError(ConnectionError):
    """An answer that is not HTTP/1.1 as the API server writes it."""


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-blank lines of a stream arriving in chunks (a watch: one event per line); a piece
    after the last newline is not a line (the stream was cut inside an event)."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            if line.strip():
                yield line


def _size(text: bytes, base: int, what: str) -> int:
    """A length of the answer's framing (decimal or hex digits only); anything else is the
    server's protocol error, not a ValueError."""
    digits = b"0123456789" if base == 10 else b"0123456789abcdefABCDEF"
    if not text or text.strip(digits):
        raise ProtocolError(f"{what} is not a length: {text[:40]!r}")
    return int(text, base)


class Answer:
    """A status and headers read; the body follows on `fp` (see `read` and `chunks`)."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        line = fp.readline(MAX_LINE + 1)
        if not line:
            raise Disconnected("the server closed the connection without an answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP status line: {line[:80]!r}")
        self.status = int(parts[1])
        self.length: int | None = None
        self.chunked = False
        self.will_close = parts[0] == b"HTTP/1.0"
        while True:
            line = fp.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise ProtocolError("a header line longer than 64 KiB")
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            key, value = name.strip().lower(), value.strip()
            if key == b"content-length":
                self.length = _size(value, 10, "Content-Length")
            elif key == b"transfer-encoding":
                self.chunked = value.lower().endswith(b"chunked")
            elif key == b"connection":
                self.will_close = value.lower() == b"close"
        if self.status in (204, 304) or 100 <= self.status < 200:
            self.length = 0
        elif self.length is None and not self.chunked:
            self.will_close = True  # the body runs to the connection's end

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives: chunk by chunk, else in pieces up to its length or the end."""
        if self.chunked:
            while True:
                size_line = self.fp.readline(MAX_LINE + 1)
                if not size_line:
                    raise ProtocolError("the connection ended inside a chunked answer")
                size = _size(size_line.split(b";", 1)[0].strip(), 16, "a chunk's size")
                if size == 0:
                    while self.fp.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                data = self._exactly(size)
                self.fp.readline(MAX_LINE + 1)  # the CRLF after the chunk
                yield data
        elif self.length is not None:
            if self.length:
                yield self._exactly(self.length)
        else:
            while piece := self.fp.read1(65536):  # type: ignore[attr-defined]
                yield piece

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def _exactly(self, n: int) -> bytes:
        data = self.fp.read(n)
        if len(data) < n:
            raise ProtocolError(f"the connection ended {n - len(data)} bytes short of the answer")
        return data


class Connection:
    """One Unix-socket connection: requests written whole, answers read from a buffered reader."""

    def __init__(self, path: Path, timeout: float | None) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            raise
        self.sock, self.timeout = sock, timeout
        self.fp: BinaryIO = sock.makefile("rb")

    def set_timeout(self, timeout: float | None) -> None:
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout

    def send(self, method: str, target: str, headers: bytes, body: bytes | None) -> Answer:
        head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n".encode() + headers
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: %d\r\n" % len(body or b"")
        self.sock.sendall(head + b"\r\n" + (body or b""))
        return Answer(self.fp)

    def close(self) -> None:
        self.fp.close()
        self.sock.close()


class LocalTransport:
    """Requests with a bearer token over the API server's Unix socket."""

    def __init__(self, path: Path, token: str, *, user_agent: str) -> None:
        self.path = path
        self.headers = (f"Authorization: Bearer {token}\r\nUser-Agent: {user_agent}\r\n"
                        "Accept: application/json\r\n").encode()
        self._local = threading.local()

    def _conn(self, timeout: float | None) -> tuple[Connection, bool]:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = Connection(self.path, timeout)
            self._local.conn = conn
            return conn, False
        conn.set_timeout(timeout)
        return conn, True

    def _drop(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    @staticmethod
    def url(path: str, query: list[tuple[str, str]]) -> str:
        return f"{path}?{urlencode(query)}" if query else path

    def call(self, method: str, path: str, query: list[tuple[str, str]], body: bytes | None, content_type: str,
             timeout: float | None) -> tuple[int, bytes]:
        headers = self.headers + (f"Content-Type: {content_type}\r\n".encode() if body is not None else b"")
        target = self.url(path, query)
        for attempt in (1, 2):
            conn, reused = self._conn(timeout)
            try:
                answer = conn.send(method, target, headers, body)
                data = answer.read()
            except RETRYABLE:
                self._drop()
                if reused and attempt == 1:
                    continue
                raise
            except BaseException:
                self._drop()
                raise
            if answer.will_close:
                self._drop()
            return answer.status, data
        raise AssertionError("unreachable")

    def stream(self, path: str, query: list[tuple[str, str]], timeout: float | None
               ) -> tuple[int, Iterator[bytes] | bytes]:
        """(status, lines) for a 2xx answer, (status, body) otherwise; on a connection of its own."""
        conn = Connection(self.path, timeout)
        try:
            answer = conn.send("GET", self.url(path, query), self.headers, None)
            if not 200 <= answer.status < 300:
                body = answer.read()
                conn.close()
                return answer.status, body
        except BaseException:
            conn.close()
            raise

        def lines() -> Iterator[bytes]:
            try:
                yield from split_lines(answer.chunks())
            finally:
                conn.close()

        return answer.status, lines()
