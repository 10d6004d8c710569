"""The Unix-socket transport's HTTP/1.1: what it writes, and every answer framing it reads
(length, chunked, to the connection's end, none), against a scripted server on a real socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.common.kube.local import LocalTransport, ProtocolError


class Scripted:
    """Answers each request read with the next scripted bytes; `close` after an answer ends
    that connection. Records every request (head, body) and how many connections it took."""

    def __init__(self, path: Path, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._connection(conn)

    def _connection(self, conn: socket.socket) -> None:
        buf = b""
        while self.answers:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(buf) < length:
                buf += conn.recv(65536)
            self.requests.append((head, buf[:length]))
            buf = buf[length:]
            answer, close = self.answers.pop(0)
            conn.sendall(answer)
            if close:
                return

    def stop(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "api.sock"


def _transport(path: Path) -> LocalTransport:
    return LocalTransport(path, "secret-token", user_agent="unit/1")


def test_a_request_is_written_whole_and_a_sized_answer_read(sock_path: Path) -> None:
    server = Scripted(sock_path, [(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: 11\r\n\r\n{\"a\": true}", False)])
    try:
        status, body = _transport(sock_path).call("POST", "/api/v1/namespaces", [("dryRun", "All")],
                                                  b'{"x":1}', "application/json", 5)
    finally:
        server.stop()
    assert (status, body) == (201, b'{"a": true}')
    head, sent = server.requests[0]
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/v1/namespaces?dryRun=All HTTP/1.1"
    assert b"Authorization: Bearer secret-token" in lines
    assert b"Content-Type: application/json" in lines
    assert b"Content-Length: 7" in lines
    assert sent == b'{"x":1}'


def test_chunked_answer_with_extensions_and_trailers(sock_path: Path) -> None:
    server = Scripted(sock_path, [(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\n", False),
                                  (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", False)])
    transport = _transport(sock_path)
    try:
        first = transport.call("GET", "/a", [], None, "", 5)
        second = transport.call("GET", "/b", [], None, "", 5)
    finally:
        server.stop()
    assert first == (200, b'{"a":1}')
    assert second == (200, b"{}")
    assert server.connections == 1  # the trailers were consumed: the connection stayed usable


def test_answer_to_the_connections_end_then_a_new_connection(sock_path: Path) -> None:
    server = Scripted(sock_path, [(b"HTTP/1.1 200 OK\r\n\r\nall of it", True),
                                  (b"HTTP/1.1 204 No Content\r\n\r\n", False),
                                  (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", False)])
    transport = _transport(sock_path)
    try:
        assert transport.call("GET", "/a", [], None, "", 5) == (200, b"all of it")
        assert transport.call("DELETE", "/b", [], None, "", 5) == (204, b"")
        assert transport.call("GET", "/c", [], None, "", 5) == (200, b"ok")
    finally:
        server.stop()
    assert server.connections == 2  # a new one after the close-delimited answer; the 204 had no body to wait for


def test_a_connection_closed_while_idle_is_retried_once(sock_path: Path) -> None:
    server = Scripted(sock_path, [(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", True),
                                  (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2", False)])
    transport = _transport(sock_path)
    try:
        assert transport.call("GET", "/a", [], None, "", 5) == (200, b"1")
        # the server closed its end after answering, though the answer said nothing of it
        assert transport.call("GET", "/a", [], None, "", 5) == (200, b"2")
    finally:
        server.stop()
    assert server.connections == 2
    assert len(server.requests) == 2


@pytest.mark.parametrize("answer", [
    b"SMTP ready\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n0123456789",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
], ids=["not-http", "cut-sized", "cut-chunked", "length-not-a-number", "negative-length", "chunk-size-not-hex",
        "chunk-size-missing"])
def test_a_malformed_or_cut_answer_is_a_protocol_error(sock_path: Path, answer: bytes) -> None:
    server = Scripted(sock_path, [(answer, True)])
    try:
        with pytest.raises(ProtocolError):
            _transport(sock_path).call("GET", "/a", [], None, "", 5)
    finally:
        server.stop()


def test_a_stream_yields_lines_across_chunks_and_skips_blank_ones(sock_path: Path) -> None:
    server = Scripted(sock_path, [(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"6\r\n{\"a\":1\r\n" b"a\r\n}\n\n{\"b\":2}\r\n" b"1\r\n\n\r\n" b"0\r\n\r\n", True)])
    try:
        status, lines = _transport(sock_path).stream("/watch", [("watch", "1")], 5)
        assert status == 200 and not isinstance(lines, bytes)
        got = list(lines)
    finally:
        server.stop()
    assert got == [b'{"a":1}', b'{"b":2}']
    assert server.requests[0][0].split(b"\r\n")[0] == b"GET /watch?watch=1 HTTP/1.1"


def test_a_refused_stream_gives_its_status_and_body(sock_path: Path) -> None:
    server = Scripted(sock_path, [(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden", False)])
    try:
        assert _transport(sock_path).stream("/watch", [], 5) == (403, b"forbidden")
    finally:
        server.stop()
