"""A plain-HTTP transport over a Unix socket, for a component on the API server's own host.

`dvp server` runs the controllers next to the API server; sending their many small requests
through TLS cost both processes CPU for nothing (the bytes never leave the host). The API
server also listens on DATA_DIR/apiserver.sock (mode 0600, the same bearer-token
authentication), and `KubeClient` sends every request there when given `local_socket`.

Each thread keeps one persistent connection; a watch gets a connection of its own for as
long as it streams. A connection the server closed while idle is opened again and the
request retried once (the request never reached the server), as urllib3 does.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class LocalTransport:
    """Requests with a bearer token over the API server's Unix socket."""

    def __init__(self, path: Path, token: str, *, user_agent: str) -> None:
        self.path = path
        self.headers = {"Authorization": f"Bearer {token}", "User-Agent": user_agent, "Accept": "application/json"}
        self._local = threading.local()

    def _conn(self, timeout: float | None) -> tuple[UnixConnection, bool]:
        conn: UnixConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = UnixConnection(self.path, timeout)
            self._local.conn = conn
            return conn, False
        if conn.timeout != timeout:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        return conn, True

    def _drop(self) -> None:
        conn: UnixConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    @staticmethod
    def url(path: str, query: list[tuple[str, str]]) -> str:
        return f"{path}?{urlencode(query)}" if query else path

    def call(self, method: str, path: str, query: list[tuple[str, str]], body: bytes | None, content_type: str,
             timeout: float | None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        target = self.url(path, query)
        for attempt in (1, 2):
            conn, reused = self._conn(timeout)
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except RETRYABLE:
                self._drop()
                if reused and attempt == 1:
                    continue
                raise
            except BaseException:
                self._drop()
                raise
            if resp.will_close:
                self._drop()
            return resp.status, data
        raise AssertionError("unreachable")

    def stream(self, path: str, query: list[tuple[str, str]], timeout: float | None
               ) -> tuple[int, Iterator[bytes] | bytes]:
        """(status, lines) for a 2xx answer, (status, body) otherwise; on a connection of its own."""
        conn = UnixConnection(self.path, timeout)
        try:
            conn.request("GET", self.url(path, query), headers=self.headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if not 200 <= resp.status < 300:
            try:
                return resp.status, resp.read()
            finally:
                conn.close()

        def lines() -> Iterator[bytes]:
            try:
                while True:
                    line = resp.readline()
                    if not line:
                        return
                    if line.strip():
                        yield line.rstrip(b"\n")
            finally:
                conn.close()

        return resp.status, lines()
